import pg from 'pg';
import { readEnv } from '../src/env.js';

/**
 * Decides once whether the PostgreSQL suites run. In CI they must: an unset or unreachable database fails
 * the run. Elsewhere they are skipped with a loud line.
 */
export default async function setup(): Promise<void> {
  const env = readEnv();
  const url = env.testDatabaseUrl;
  if (!url) {
    if (env.ci)
      throw new Error(
        'CI=true but COSMOS_TEST_DATABASE_URL is not set: the PostgreSQL suite cannot be skipped in CI',
      );
    console.warn(
      '\n!!! COSMOS_TEST_DATABASE_URL is not set: SKIPPING the PostgreSQL suite (set it to run against postgres) !!!\n',
    );
    return;
  }
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    console.log(`PostgreSQL suite: running against postgres ${rows[0]!.v} at ${new URL(url).host}`);
  } catch (error) {
    throw new Error(
      `PostgreSQL at COSMOS_TEST_DATABASE_URL is unreachable (${String(error)}): failing, not skipping`,
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
