import { useEffect, useState } from 'react';
import { Box, Text, render, useApp, useInput, useStdin } from 'ink';
import { Table } from '../ui/table.js';
import type { MessageRecord } from './queries.js';
import { terminalColumns } from './recent-view.js';

/** `query recent --watch` on a terminal: the table, refreshed every interval until Ctrl-C or q. */
function RecentWatch({ fetch, intervalMs, title }: { fetch: () => Promise<MessageRecord[]>; intervalMs: number; title: string }) {
  const { exit } = useApp();
  const { isRawModeSupported } = useStdin();
  const [rows, setRows] = useState<MessageRecord[] | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [updated, setUpdated] = useState<Date | undefined>();
  useInput((input) => (input === 'q' ? exit() : undefined), { isActive: Boolean(isRawModeSupported) });

  useEffect(() => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    // One query at a time: the next starts intervalMs after the previous finished.
    const tick = async () => {
      try {
        const next = await fetch();
        if (stopped) return;
        setRows(next);
        setError(undefined);
      } catch (e) {
        if (stopped) return;
        setError((e as Error).message);
      }
      setUpdated(new Date());
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [fetch, intervalMs]);

  const width = process.stdout.columns || 120;
  return (
    <Box flexDirection="column">
      {rows ? <Table rows={rows} columns={terminalColumns(rows, width)} title={title} /> : <Text dimColor>Loading…</Text>}
      {error ? <Text color="red">Query failed: {error} (retrying)</Text> : null}
      <Text dimColor>
        {updated ? `Updated ${updated.toISOString().slice(11, 19)}Z` : ''} · every {intervalMs / 1000}s · Ctrl-C to exit
      </Text>
    </Box>
  );
}

export async function watchRecent(opts: { fetch: () => Promise<MessageRecord[]>; intervalMs: number; title: string }): Promise<void> {
  const app = render(<RecentWatch {...opts} />, { stdout: process.stdout, patchConsole: false, exitOnCtrlC: true });
  // Without raw mode (stdin not a terminal) Ctrl-C arrives as SIGINT instead of a key press.
  const onSigint = () => app.unmount();
  process.once('SIGINT', onSigint);
  try {
    await app.waitUntilExit();
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
