/**
 * Datastore column typing. Device payloads vary, so every file gets its own schema, derived from the values
 * it holds and the types its datastore already has. The rules:
 *
 *   - a new attribute becomes a new column (readers combine files with union_by_name);
 *   - whole numbers only -> BIGINT; any fraction (or a whole number beyond 2^53) -> DOUBLE (widening);
 *   - true/false only -> BOOLEAN; strings only -> VARCHAR;
 *   - objects and arrays -> VARCHAR holding their JSON text (query with json_extract);
 *   - any other mix (number and string, boolean and number, object and string...) -> VARCHAR: strings are
 *     kept as they are and every other value becomes its JSON text, so nothing is lost;
 *   - across files a column only widens: BIGINT may become DOUBLE, anything else that changes becomes
 *     VARCHAR, and stays VARCHAR. Each change is recorded (lake_schema_changes) for `analytics status`.
 *   - nulls say nothing about the type; a column that only ever held null is not created.
 *
 * JSON's own type would be nicer for nested values, but DuckDB cannot union a JSON column in one file with
 * a VARCHAR column in another, so nested values are plain VARCHAR.
 */
export type ColumnType = 'BIGINT' | 'DOUBLE' | 'BOOLEAN' | 'VARCHAR';

export const KIND_INT = 1;
export const KIND_DOUBLE = 2;
export const KIND_BOOL = 4;
export const KIND_STRING = 8;
export const KIND_NESTED = 16;

/** A bit for the JSON kind of a value; 0 for null. */
export function kindOf(v: unknown): number {
  switch (typeof v) {
    case 'number':
      return Number.isSafeInteger(v) ? KIND_INT : KIND_DOUBLE;
    case 'string':
      return KIND_STRING;
    case 'boolean':
      return KIND_BOOL;
    case 'object':
      return v === null ? 0 : KIND_NESTED;
    default:
      return 0;
  }
}

export function kindNames(mask: number): string[] {
  const names: string[] = [];
  if (mask & KIND_INT) names.push('integer');
  if (mask & KIND_DOUBLE) names.push('decimal');
  if (mask & KIND_BOOL) names.push('boolean');
  if (mask & KIND_STRING) names.push('string');
  if (mask & KIND_NESTED) names.push('object/array');
  return names;
}

/** The type of a column whose values had the kinds in `mask`; undefined when it only held nulls. */
export function typeForKinds(mask: number): ColumnType | undefined {
  if (mask === 0) return undefined;
  if ((mask & ~(KIND_INT | KIND_DOUBLE)) === 0) return mask & KIND_DOUBLE ? 'DOUBLE' : 'BIGINT';
  if (mask === KIND_BOOL) return 'BOOLEAN';
  return 'VARCHAR';
}

/** The narrowest type that holds values of both types. */
export function widen(a: ColumnType | undefined, b: ColumnType | undefined): ColumnType | undefined {
  if (a === undefined) return b;
  if (b === undefined || a === b) return a;
  if ((a === 'BIGINT' && b === 'DOUBLE') || (a === 'DOUBLE' && b === 'BIGINT')) return 'DOUBLE';
  return 'VARCHAR';
}

/** Mixed kinds in one file that had to be stored as VARCHAR (worth telling the user about). */
export function isMixed(mask: number): boolean {
  return typeForKinds(mask) === 'VARCHAR' && mask !== KIND_STRING && mask !== KIND_NESTED;
}

export interface KnownColumn {
  key: string;
  name: string;
  type: ColumnType;
  position: number;
}

export interface ResolvedColumn {
  name: string;
  type: ColumnType;
}

export type SchemaChangeKind = 'added' | 'widened' | 'stringified';

export interface SchemaChange {
  column: string;
  change: SchemaChangeKind;
  from: ColumnType | null;
  to: ColumnType;
  detail?: string;
}

/**
 * The columns of a new file: every known column, in datastore order, that this file has values for, then
 * new columns in order of appearance; each typed by widening the known type with the file's values.
 */
export function resolveColumns(
  known: ReadonlyMap<string, KnownColumn>,
  seen: ReadonlyMap<string, { name: string; mask: number }>,
): { columns: ResolvedColumn[]; changes: SchemaChange[] } {
  const columns: (ResolvedColumn & { position: number })[] = [];
  const changes: SchemaChange[] = [];
  let nextPosition = Math.max(-1, ...[...known.values()].map((c) => c.position)) + 1;
  for (const [key, { name, mask }] of seen) {
    const fileType = typeForKinds(mask);
    if (fileType === undefined) continue;
    const prior = known.get(key);
    const type = widen(prior?.type, fileType)!;
    const mixed = isMixed(mask) ? `mixed ${kindNames(mask).join(', ')} values stored as VARCHAR` : undefined;
    if (!prior) changes.push({ column: name, change: 'added', from: null, to: type, detail: mixed });
    else if (type !== prior.type)
      changes.push({
        column: prior.name,
        change: type === 'VARCHAR' ? 'stringified' : 'widened',
        from: prior.type,
        to: type,
        detail: mixed ?? `${kindNames(mask).join(', ')} values`,
      });
    columns.push({ name: prior?.name ?? name, type, position: prior?.position ?? nextPosition++ });
  }
  columns.sort((a, b) => a.position - b.position);
  return { columns: columns.map(({ name, type }) => ({ name, type })), changes };
}
