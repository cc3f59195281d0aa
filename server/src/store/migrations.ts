// Versioned schema migrations. Each driver has its own ordered list (SQL dialects differ); a
// migration is never edited once released — append a new one. Issue 6 appends the token ledger,
// revocations and audit tables here and mirrors the list for PostgreSQL.
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'rotation_state',
    sql: `
      CREATE TABLE rotation_state (
        user_name  TEXT PRIMARY KEY,
        phase      TEXT NOT NULL,
        state      TEXT NOT NULL,      -- JSON of RotationState: key ids and timestamps only
        fence      INTEGER NOT NULL,   -- fencing token of the lease that wrote it
        updated_at TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'leases',
    sql: `
      CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        token      INTEGER NOT NULL,   -- fencing token: grows on every change of holder
        expires_at INTEGER NOT NULL    -- epoch milliseconds
      );
    `,
  },
];

/** Checks the list itself: versions 1..n in order, unique names. */
export function assertMigrationList(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name}: version ${m.version}, expected ${i + 1}`);
  });
}
