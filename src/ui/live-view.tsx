import { useEffect, useState } from 'react';
import { Box, Static, Text, render } from 'ink';
import type { PlatformStatus } from '../targets/local/platform.js';
import { redactUrl } from '../db/connection.js';

/** The foreground `local up` view: a compact live box (stderr) with the log lines above it. */
let appendLog: ((line: string) => void) | undefined;
const early: string[] = [];

export function pushLog(line: string): void {
  if (appendLog) appendLog(line);
  else early.push(line);
}

function LiveView({ status }: { status: () => PlatformStatus }) {
  const [snapshot, setSnapshot] = useState(status());
  const [logs, setLogs] = useState<{ id: number; line: string }[]>(early.map((line, id) => ({ id, line })));
  useEffect(() => {
    let next = logs.length;
    appendLog = (line) => setLogs((l) => [...l, { id: next++, line }]);
    const timer = setInterval(() => setSnapshot(status()), 1000);
    return () => {
      clearInterval(timer);
      appendLog = undefined;
    };
  }, []);
  const s = snapshot;
  return (
    <>
      <Static items={logs}>{(l) => <Text key={l.id} dimColor>{l.line}</Text>}</Static>
      <Box borderStyle="round" paddingX={1} flexDirection="column">
        <Text>
          <Text bold>iotctl local</Text> {s.endpoints.mqtt}
          {s.endpoints.postgres ? `  ${redactUrl(s.endpoints.postgres)}` : ''}  up {s.uptimeSeconds}s
        </Text>
        <Text>
          clients <Text bold>{s.connectedClients}</Text>  publishes <Text bold>{s.publishesPerSecond.toFixed(0)}/s</Text> (accepted {s.publishesAccepted.total}, denied {s.publishesDenied.total})  refused connections {s.connectionsRefused.total}
        </Text>
        {s.rules ? (
          <Text>
            rules {s.rules.messagesPerSecond.toFixed(0)}/s  lag {s.rules.lag}  errors {s.rules.evaluationErrors + (s.rules.actionsFailed as { total: number }).total}
          </Text>
        ) : null}
        <Text dimColor>Ctrl-C to stop</Text>
      </Box>
    </>
  );
}

export function mount(status: () => PlatformStatus): () => void {
  const app = render(<LiveView status={status} />, { stdout: process.stderr, patchConsole: false, exitOnCtrlC: false });
  return () => app.unmount();
}
