import type { Db } from './store.js';
import type { RuleSpec } from '../../spec/schema.js';

/** AWS's error action payload. */
export interface RuleErrorPayload {
  ruleName: string;
  topic: string;
  cloudwatchTraceId: string;
  clientId: string;
  base64OriginalPayload: string;
  failures: { failedAction: string; actionType: string; failedResource: string; errorMessage: string }[];
}

export interface RuleErrorRecord {
  ruleName: string;
  messageId: string;
  at: string;
  error: RuleErrorPayload;
}

/**
 * The local target's applied topic rules (what ListTopicRules/GetTopicRule return on AWS), and every rule
 * failure with its error payload, kept whether or not the rule has an errorAction.
 */
export class RulesStore {
  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS rules_applied (name TEXT PRIMARY KEY, config TEXT NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS rules_errors (
        id INTEGER PRIMARY KEY AUTOINCREMENT, rule_name TEXT NOT NULL, message_id TEXT NOT NULL, created_at INTEGER NOT NULL, error TEXT NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 1, UNIQUE (rule_name, message_id));
      CREATE INDEX IF NOT EXISTS rules_errors_undelivered ON rules_errors (delivered) WHERE delivered = 0;`);
  }

  /**
   * Idempotent per (rule, message): a replayed batch records its failures once. `delivered: false` makes
   * it an outbox entry until the rule's errorAction has received it.
   */
  recordError(payload: RuleErrorPayload, delivered: boolean, now = Date.now()): void {
    this.db
      .prepare('INSERT OR IGNORE INTO rules_errors (rule_name, message_id, created_at, error, delivered) VALUES (?, ?, ?, ?, ?)')
      .run(payload.ruleName, payload.cloudwatchTraceId, now, JSON.stringify(payload), delivered ? 1 : 0);
  }

  markDelivered(ruleName: string, messageId: string): void {
    this.db.prepare('UPDATE rules_errors SET delivered = 1 WHERE rule_name = ? AND message_id = ?').run(ruleName, messageId);
  }

  /** Errors whose errorAction delivery did not finish (a crash, or a failed delivery), oldest first. */
  undelivered(limit = 500): RuleErrorPayload[] {
    return (this.db.prepare('SELECT error FROM rules_errors WHERE delivered = 0 ORDER BY id LIMIT ?').all(limit) as { error: string }[]).map((r) => JSON.parse(r.error));
  }

  pruneErrors(olderThan: number): number {
    return this.db.prepare('DELETE FROM rules_errors WHERE created_at < ?').run(olderThan).changes;
  }

  /** Recent failures, newest first. */
  errors(opts: { limit?: number; rule?: string } = {}): RuleErrorRecord[] {
    const rows = this.db
      .prepare('SELECT rule_name, message_id, created_at, error FROM rules_errors WHERE (? IS NULL OR rule_name = ?) ORDER BY id DESC LIMIT ?')
      .all(opts.rule ?? null, opts.rule ?? null, opts.limit ?? 50) as { rule_name: string; message_id: string; created_at: number; error: string }[];
    return rows.map((r) => ({ ruleName: r.rule_name, messageId: r.message_id, at: new Date(r.created_at).toISOString(), error: JSON.parse(r.error) }));
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
