// Entry point of `pnpm --filter @atbb/appview db:migrate` and of the image's
// `migrate` command. Needs DATABASE_URL only: operators run it before the
// rest of the configuration exists, e.g. from a CI job.
import { readConfigOrExit } from '@atbb/config';
import { describeError, migrate } from '@atbb/db';

const config = readConfigOrExit({ required: ['DATABASE_URL'], optional: ['DB_WAIT_TIMEOUT'] });

try {
  const result = await migrate({
    databaseUrl: config.DATABASE_URL,
    waitSeconds: config.DB_WAIT_TIMEOUT ?? 0,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(
    `migrate: done (${result.applied.length} applied, ${result.alreadyApplied.length} already applied)\n`,
  );
  process.exit(0);
} catch (err) {
  // The db package's errors are already free of credentials; describeError
  // masks the URL once more for anything unexpected.
  process.stderr.write(`migrate error: ${describeError(err, config.DATABASE_URL)}\n`);
  process.exit(1);
}
