/**
 * A stateful fake of Athena's named queries at the SDK boundary (aws-sdk-client-mock): moto serves
 * CreateNamedQuery, GetNamedQuery and ListNamedQueries but has no BatchGetNamedQuery, UpdateNamedQuery or DeleteNamedQuery,
 * which a dataset's SQL change and its prune need. It holds these calls as Athena does:
 *  - ids are UUIDs; names need not be unique; a query belongs to one workgroup (default `primary`);
 *  - ListNamedQueries pages by `pageSize` with NextToken and lists only the given workgroup;
 *  - Get/Update/Delete of an unknown id fail with InvalidRequestException;
 *  - Update changes name, query string and description, never the database or the workgroup.
 * Every other Athena call is refused, so a test using it cannot reach Athena by accident.
 */
import { randomUUID } from 'node:crypto';
import * as athena from '@aws-sdk/client-athena';
import { mockClient } from 'aws-sdk-client-mock';
import { translateError } from '../../src/targets/aws/sdk.js';

interface NamedQuery {
  NamedQueryId: string;
  Name: string;
  Database: string;
  QueryString: string;
  Description?: string;
  WorkGroup: string;
}

type Input = Record<string, any>;

export class FakeAthenaNamedQueries {
  readonly queries = new Map<string, NamedQuery>();
  /** Every call, in order: `Op name-or-id`. */
  readonly calls: string[] = [];
  private mock?: ReturnType<typeof mockClient>;

  constructor(private readonly pageSize = 2) {}

  install(): this {
    const mock = mockClient(athena.AthenaClient);
    mock.onAnyCommand().rejects(new Error('this test fakes only the named-query calls of Athena'));
    for (const op of Object.keys(this.handlers)) {
      const Command = (athena as unknown as Record<string, new (i: unknown) => unknown>)[`${op}Command`]!;
      mock.on(Command as never).callsFake(async (input: Input) => {
        this.calls.push(`${op} ${input.Name ?? input.NamedQueryId ?? input.WorkGroup ?? ''}`.trim());
        try {
          return this.handlers[op]!(input);
        } catch (e) {
          // The mock replaces `send`, so AwsClients' middleware does not run: translate exactly as it would.
          throw translateError(e, 'athena', op, input, {});
        }
      });
    }
    this.mock = mock;
    return this;
  }

  restore(): void {
    this.mock?.restore();
  }

  byName(name: string): NamedQuery | undefined {
    return [...this.queries.values()].find((q) => q.Name === name);
  }

  private find(id: string): NamedQuery {
    const q = this.queries.get(id);
    if (!q) throw new athena.InvalidRequestException({ message: `NamedQuery ${id} was not found`, $metadata: { httpStatusCode: 400 } });
    return q;
  }

  private readonly handlers: Record<string, (i: Input) => unknown> = {
    CreateNamedQuery: (i) => {
      const q = { NamedQueryId: randomUUID(), Name: i.Name, Database: i.Database, QueryString: i.QueryString, Description: i.Description, WorkGroup: i.WorkGroup ?? 'primary' };
      this.queries.set(q.NamedQueryId, q);
      return { NamedQueryId: q.NamedQueryId };
    },
    GetNamedQuery: (i) => ({ NamedQuery: { ...this.find(i.NamedQueryId) } }),
    // As Athena: at most 50 ids; an unknown one is listed as unprocessed, not an error.
    BatchGetNamedQuery: (i) => {
      if (i.NamedQueryIds.length > 50) throw new athena.InvalidRequestException({ message: 'at most 50 NamedQueryIds', $metadata: { httpStatusCode: 400 } });
      const ids = i.NamedQueryIds as string[];
      return {
        NamedQueries: ids.filter((id) => this.queries.has(id)).map((id) => ({ ...this.queries.get(id)! })),
        UnprocessedNamedQueryIds: ids.filter((id) => !this.queries.has(id)).map((NamedQueryId) => ({ NamedQueryId, ErrorCode: 'INVALID_INPUT', ErrorMessage: 'not found' })),
      };
    },
    ListNamedQueries: (i) => {
      const ids = [...this.queries.values()].filter((q) => q.WorkGroup === (i.WorkGroup ?? 'primary')).map((q) => q.NamedQueryId);
      const start = i.NextToken ? Number(i.NextToken) : 0;
      const end = start + Math.min(i.MaxResults ?? 50, this.pageSize);
      return { NamedQueryIds: ids.slice(start, end), ...(end < ids.length ? { NextToken: String(end) } : {}) };
    },
    UpdateNamedQuery: (i) => {
      const q = this.find(i.NamedQueryId);
      Object.assign(q, { Name: i.Name, QueryString: i.QueryString, Description: i.Description });
      return {};
    },
    DeleteNamedQuery: (i) => {
      this.find(i.NamedQueryId);
      this.queries.delete(i.NamedQueryId);
      return {};
    },
  };
}
