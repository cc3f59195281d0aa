// The real PostgreSQL on the machine for tests: one uniquely named schema per caller, selected with
// `options=-c search_path=…` in the connection string, so test files run in parallel and a
// broker process gets the same isolation from its config alone. The database is created if absent.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const BASE = process.env.CREDBROKER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestSchema {
  /** Connection string whose connections use only this schema. */
  url: string;
  schema: string;
  /** Runs SQL in the schema (for tampering and assertions). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  drop(): Promise<void>;
}

async function ensureDatabase(): Promise<void> {
  const probe = new pg.Client({ connectionString: BASE });
  try {
    await probe.connect();
    await probe.end();
  } catch (err) {
    await probe.end().catch(() => undefined);
    if ((err as { code?: string }).code !== '3D000') throw err; // anything but "database does not exist"
    const u = new URL(BASE);
    const name = u.pathname.slice(1);
    u.pathname = '/postgres';
    const admin = new pg.Client({ connectionString: u.toString() });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } catch (e) {
      if ((e as { code?: string }).code !== '42P04') throw e; // created meanwhile by another file
    } finally {
      await admin.end();
    }
  }
}

export async function createTestSchema(prefix: string): Promise<TestSchema> {
  await ensureDatabase();
  const schema = `cb_${prefix}_${randomBytes(5).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: BASE });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
  await admin.query(`SET search_path TO ${pg.escapeIdentifier(schema)}`);
  let dropped = false;
  const u = new URL(BASE);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: u.toString(),
    schema,
    query: (sql, params) => admin.query(sql, params),
    /** Idempotent: safe from both a test's own cleanup and an afterAll safety net. */
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await admin.end();
    },
  };
}
