/**
 * Names Athena and the Glue Data Catalog accept for databases and tables, as written in a query without
 * quoting ("Name databases, tables, and columns",
 * https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html): lowercase letters,
 * digits and `_`, 1 to 255 characters. A name starting with `_` needs backticks and one starting with a
 * digit needs double quotes in queries, so iotctl asks for a letter first.
 */

const PLAIN = /^[a-z][a-z0-9_]*$/;
const MAX = 255;

/** Why `name` is not a plain Athena name, with the name to use instead; undefined when it is fine. */
export function athenaNameProblem(name: string): { message: string; suggestion: string } | undefined {
  if (name.length >= 1 && name.length <= MAX && PLAIN.test(name)) return undefined;
  const suggestion = athenaName(name);
  if (name.length === 0 || name.length > MAX) return { message: `must be 1 to ${MAX} characters long`, suggestion };
  if (/^[_0-9]/.test(name)) return { message: `must start with a lowercase letter (a name starting with ${name[0] === '_' ? '_' : 'a digit'} must be quoted in every Athena query)`, suggestion };
  if (/[A-Z]/.test(name) && PLAIN.test(name.toLowerCase())) return { message: 'must be lowercase (Glue stores names in lowercase)', suggestion };
  return { message: "may use only lowercase letters, digits and '_' (Athena rejects other characters, and a name with '-' must be quoted in every query)", suggestion };
}

/** The closest plain Athena name: lowercase, `_` for any other character, a letter first. */
export function athenaName(name: string): string {
  let out = name.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (!/^[a-z]/.test(out)) out = `t_${out.replace(/^_+/, '')}`;
  return out.slice(0, MAX) || 't';
}

/** The default athena.database of a project: its name with `_` for `-` (`fleet-eu` -> `fleet_eu`). */
export function defaultAthenaDatabase(project: string): string {
  return athenaName(project);
}

/** A name as it can be pasted into an Athena (Trino) or DuckDB query: quoted only when it must be. */
export function sqlIdentifier(name: string): string {
  return PLAIN.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}
