import { useEffect, useState } from 'react';
import { Box, Static, Text, render } from 'ink';
import type { TailRecord } from '../ports.js';

/**
 * The live `stream tail` view on a terminal: each record printed once (time, shard, partition key, sequence
 * number, then the payload pretty-printed) above a status line that keeps the count.
 */
export interface TailViewHandle {
  push(record: TailRecord): void;
  /** Unmount and leave the printed records on screen. */
  close(): Promise<void>;
}

interface Shown {
  key: number;
  record: TailRecord;
}

function RecordView({ record }: { record: TailRecord }) {
  const time = record.approximateArrivalTimestamp.replace('T', ' ').replace('Z', '');
  const body = record.json ? JSON.stringify(record.data, null, 2) : String(record.data);
  return (
    <Box flexDirection="column" marginBottom={0}>
      <Text>
        <Text color="cyan">{time}</Text> <Text color="magenta">shard {Number(record.shardId.slice('shardId-'.length))}</Text>{' '}
        <Text bold>{record.partitionKey}</Text> <Text dimColor>#{record.sequenceNumber.replace(/^(\d{12})0*/, '$1…')}</Text>
        {record.json ? null : <Text color="yellow"> (not JSON, base64)</Text>}
      </Text>
      <Box paddingLeft={2}>
        <Text>{body}</Text>
      </Box>
    </Box>
  );
}

function TailView({ stream, shards, filters, subscribe }: { stream: string; shards: number; filters: string; subscribe: (fn: (r: TailRecord) => void) => void }) {
  const [shown, setShown] = useState<Shown[]>([]);
  useEffect(() => {
    let n = 0;
    subscribe((record) => setShown((prev) => [...prev, { key: n++, record }]));
  }, [subscribe]);
  return (
    <>
      <Static items={shown}>{(s) => <RecordView key={s.key} record={s.record} />}</Static>
      <Text dimColor>
        following {stream} ({shards} shard{shards === 1 ? '' : 's'}){filters ? ` where ${filters}` : ''} · {shown.length} record{shown.length === 1 ? '' : 's'} · Ctrl-C to stop
      </Text>
    </>
  );
}

export function renderTailView(opts: { stream: string; shards: number; filters: string }): TailViewHandle {
  let listener: ((r: TailRecord) => void) | undefined;
  const queue: TailRecord[] = [];
  const subscribe = (fn: (r: TailRecord) => void) => {
    listener = fn;
    for (const r of queue.splice(0)) fn(r);
  };
  const app = render(<TailView stream={opts.stream} shards={opts.shards} filters={opts.filters} subscribe={subscribe} />, { exitOnCtrlC: false, patchConsole: false });
  return {
    push: (r) => (listener ? listener(r) : queue.push(r)),
    close: async () => {
      app.unmount();
      await app.waitUntilExit();
    },
  };
}
