import type { Config } from '@react-router/dev/config';

// Server-rendered; `react-router build` writes build/server/index.js and the
// browser's files to build/client (hashed ones under build/client/assets).
export default {
  ssr: true,
  appDirectory: 'app',
  buildDirectory: 'build',
  // React Router 8 changes these defaults. Saying "not yet" keeps today's v7
  // behaviour and build layout, and keeps the build log free of warnings.
  future: {
    v8_middleware: false,
    v8_splitRouteModules: false,
    v8_viteEnvironmentApi: false,
    v8_passThroughRequests: false,
    v8_trailingSlashAwareDataRequests: false,
  },
} satisfies Config;
