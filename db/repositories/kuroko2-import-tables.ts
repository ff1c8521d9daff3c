/** The tables `kuroko import kuroko2` reads and writes: ours and the console's, plus migration 0007's. */
import type { ColumnType, Kysely } from 'kysely';
import type { ConsoleTables, Database, DbTime, JobDefinitionTable } from '../schema';

/** The tables of migration 0007, and the HipChat columns it adds to job_definitions. */
// A type alias, not an interface: `withTables` wants an index-compatible record.
export type Kuroko2ImportTables = ConsoleTables & {
  job_definitions: JobDefinitionTable & {
    hipchat_room: ColumnType<string, string | undefined, string>;
    hipchat_additional_text: ColumnType<string | null, string | null | undefined, string | null>;
  };
  memory_expectancies: { job_definition_id: number; expected_kb: number; updated_at: DbTime };
  kuroko2_imports: { kind: string; source_id: number; target_id: number; imported_at: DbTime };
};
export type ImportDb = Kysely<Database & Kuroko2ImportTables>;

export const IMPORT_KIND = { definition: 'definition', instance: 'instance' } as const;
