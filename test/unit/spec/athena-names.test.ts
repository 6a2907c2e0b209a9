/**
 * Athena and Glue names ("Name databases, tables, and columns",
 * https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html): lowercase letters,
 * digits and `_`, at most 255 characters; `_` or a digit first needs quoting in every query.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSpec } from '../../../src/spec/loader.js';
import { specProblems } from '../../helpers/project.js';
import { initSpec } from '../../../src/spec/init-template.js';
import { athenaName, athenaNameProblem, sqlIdentifier } from '../../../src/spec/names.js';

const problemsOf = specProblems;

test('the default athena.database is the project name with _ for -', () => {
  assert.is(parseSpec('project: fleet-eu-west\n').spec.athena.database, 'fleet_eu_west');
  assert.is(parseSpec('project: demo\n').spec.athena.database, 'demo');
  assert.is(parseSpec('project: 9lives\n').spec.athena.database, 't_9lives');
  assert.is(parseSpec('project: fleet-eu\nathena: { workgroup: primary }\n').spec.athena.database, 'fleet_eu');
  assert.is(parseSpec('project: fleet-eu\nathena: { database: analytics }\n').spec.athena.database, 'analytics');
});

test('iotctl init writes an Athena database name for a hyphenated project, and the spec it writes is valid', () => {
  const yaml = initSpec('fleet-eu');
  assert.match(yaml, /\n {2}database: fleet_eu\b/);
  assert.is(parseSpec(yaml).spec.athena.database, 'fleet_eu');
});

test('spec validate reports names Athena rejects at file:line:col, with the name to use', () => {
  const yaml = [
    'project: fleet-eu',
    'athena:',
    '  database: fleet-eu',
    'analytics:',
    '  channels:',
    '    - name: Raw-Telemetry',
    '  datastores:',
    '    - name: _store',
    '    - name: Telemetry',
    '',
  ].join('\n');
  const problems = problemsOf(yaml).map((p) => ({ at: `${p.line}:${p.col}`, path: p.path, message: p.message, hint: p.hint }));
  assert.equal(problems, [
    { at: '3:13', path: 'athena.database', message: `athena.database "fleet-eu" may use only lowercase letters, digits and '_' (Athena rejects other characters, and a name with '-' must be quoted in every query)`, hint: 'Use "fleet_eu".' },
    { at: '8:13', path: 'analytics.datastores[0].name', message: 'datastore name "_store" must start with a lowercase letter (a name starting with _ must be quoted in every Athena query)', hint: 'Use "t_store".' },
    { at: '9:13', path: 'analytics.datastores[1].name', message: 'datastore name "Telemetry" must be lowercase (Glue stores names in lowercase)', hint: 'Use "telemetry".' },
    { at: '6:13', path: 'analytics.channels[0].name', message: `channel name "Raw-Telemetry" may use only lowercase letters, digits and '_' (Athena rejects other characters, and a name with '-' must be quoted in every query)`, hint: 'Use "raw_telemetry".' },
  ]);
});

test('name rules', () => {
  assert.is(athenaNameProblem('telemetry_store_2'), undefined);
  assert.is(athenaNameProblem('a'.repeat(255)), undefined);
  assert.match(athenaNameProblem('a'.repeat(256))!.message, /1 to 255/);
  assert.match(athenaNameProblem('1st')!.message, /starting with a digit/);
  assert.match(athenaNameProblem('a b')!.message, /only lowercase/);
  assert.is(athenaName('My-Fleet.v2'), 'my_fleet_v2');
});

test('names are printed so they paste into a query unchanged', () => {
  assert.is(sqlIdentifier('telemetry'), 'telemetry');
  assert.is(sqlIdentifier('my-fleet'), '"my-fleet"');
  assert.is(sqlIdentifier('Telemetry'), '"Telemetry"');
  assert.is(sqlIdentifier('we"ird'), '"we""ird"');
});

test.run();
