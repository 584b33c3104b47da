import { type RouteConfig, index, route } from '@react-router/dev/routes';

export default [index('routes/home.tsx'), route('b/:slug', 'routes/board.tsx')] satisfies RouteConfig;
