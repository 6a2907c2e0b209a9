import type { Db } from './store.js';
import type { RuleSpec } from '../../spec/schema.js';

/** The local target's applied topic rules (what ListTopicRules/GetTopicRule return on AWS). */
export class RulesStore {
  constructor(private readonly db: Db) {
    db.exec('CREATE TABLE IF NOT EXISTS rules_applied (name TEXT PRIMARY KEY, config TEXT NOT NULL, updated_at INTEGER NOT NULL)');
  }

  list(): RuleSpec[] {
    return (this.db.prepare('SELECT config FROM rules_applied ORDER BY name').all() as { config: string }[]).map((r) => JSON.parse(r.config));
  }

  get(name: string): RuleSpec | undefined {
    const row = this.db.prepare('SELECT config FROM rules_applied WHERE name = ?').get(name) as { config: string } | undefined;
    return row && JSON.parse(row.config);
  }

  put(rule: RuleSpec, now = Date.now()): void {
    this.db
      .prepare('INSERT INTO rules_applied (name, config, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at')
      .run(rule.name, JSON.stringify(rule), now);
  }

  delete(name: string): void {
    this.db.prepare('DELETE FROM rules_applied WHERE name = ?').run(name);
  }
}
