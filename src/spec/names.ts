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

/**
 * Project and stage names. They form the scope of every physical name on AWS (src/targets/aws/naming.ts:
 * `iotctl-<project>-<stage>--<name>`), which is unambiguous only because neither holds `--` and a stage holds
 * no `-` at all: the first `--` ends the scope and the last `-` before it splits project from stage, so
 * project `fleet` with stage `staging` can never own a name of project `fleet-staging`.
 */
export const PROJECT_NAME = /^[a-z0-9](?:-?[a-z0-9])*$/;
export const PROJECT_NAME_MAX = 63;
export const STAGE_NAME = /^[a-z][a-z0-9]*$/;
export const STAGE_NAME_MAX = 16;

/** Why `name` cannot be a project name (with the closest one that can), or undefined when it can. */
export function projectNameProblem(name: string): { message: string; suggestion: string } | undefined {
  if (name.length >= 1 && name.length <= PROJECT_NAME_MAX && PROJECT_NAME.test(name)) return undefined;
  const suggestion = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, PROJECT_NAME_MAX).replace(/-+$/, '') || 'iot';
  if (name.length === 0 || name.length > PROJECT_NAME_MAX) return { message: `must be 1 to ${PROJECT_NAME_MAX} characters long`, suggestion };
  if (/--|^-|-$/.test(name) && /^[a-z0-9-]+$/.test(name)) return { message: "may not start or end with '-' or hold '--' (iotctl uses '--' to end the project and stage in AWS names)", suggestion };
  return { message: "may use only lowercase letters, digits and single '-' between them", suggestion };
}

/** Why `name` cannot be a stage name (with the closest one that can), or undefined when it can. */
export function stageNameProblem(name: string): { message: string; suggestion: string } | undefined {
  if (name.length >= 1 && name.length <= STAGE_NAME_MAX && STAGE_NAME.test(name)) return undefined;
  let suggestion = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (!/^[a-z]/.test(suggestion)) suggestion = `s${suggestion}`;
  suggestion = suggestion.slice(0, STAGE_NAME_MAX);
  if (name.length === 0 || name.length > STAGE_NAME_MAX) return { message: `must be 1 to ${STAGE_NAME_MAX} characters long (it is part of every AWS name, and IAM roles and Lambda functions allow 64 characters in all)`, suggestion };
  if (/-/.test(name)) return { message: "may not hold '-' (the stage is the last '-'-separated part of the scope in AWS names, so 'fleet' + 'eu-prod' would read as 'fleet-eu' + 'prod')", suggestion };
  return { message: 'must start with a lowercase letter and hold only lowercase letters and digits', suggestion };
}
