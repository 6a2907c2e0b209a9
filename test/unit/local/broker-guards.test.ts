/**
 * The broker's pure guards: the daemon.log writer (control characters escaped, rotation by size), the log throttle
 * for peer-driven refusals, the per-client-id CONNECT interval, and the fixed-header packet-size guard.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { escapeControl, RotatingLog } from '../../../src/targets/local/daemon-log.js';
import { KeyedInterval, LogThrottle } from '../../../src/targets/local/counters.js';
import { guardPacketSize } from '../../../src/targets/local/broker.js';
import { publishPacket, remainingLength } from '../../helpers/raw-mqtt.js';

test('escapeControl: newlines, CR, ESC, NUL, C1 and U+2028 cannot start a line or drive a terminal', () => {
  assert.is(escapeControl('a\nb\r\tc\u001b[2J\u0000\u0085\u2028\\'), 'a\\nb\\r\\tc\\x1b[2J\\x00\\x85\\u2028\\\\');
  assert.is(escapeControl('plain text: ünïcode ✓'), 'plain text: ünïcode ✓');
});

test('RotatingLog rotates by size and keeps a bounded number of files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-log-'));
  try {
    const file = join(dir, 'daemon.log');
    const log = new RotatingLog(file, 1000, 2);
    for (let i = 0; i < 100; i++) log.append(`${String(i).padStart(3, '0')} ${'x'.repeat(95)}`);
    assert.ok(statSync(file).size <= 1000);
    assert.ok(existsSync(`${file}.1`) && existsSync(`${file}.2`));
    assert.not.ok(existsSync(`${file}.3`));
    assert.match(readFileSync(file, 'utf8'), /^099 /m);
    assert.is(statSync(file).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('LogThrottle: a burst per key and window, then one summary line', () => {
  let now = 0;
  const lines: string[] = [];
  const t = new LogThrottle((l) => lines.push(l), 3, 1000, () => now);
  for (let i = 0; i < 50; i++) t.log('policyDenied', `denied ${i}`);
  t.log('connectionLimit', 'cap');
  assert.equal(lines, ['denied 0', 'denied 1', 'denied 2', 'cap']);
  now = 1500;
  t.log('policyDenied', 'denied again');
  assert.equal(lines.slice(4), ['47 more "policyDenied" line(s) suppressed in the last 2 s', 'denied again']);
  t.stop();
});

test('KeyedInterval: one event per key per interval; other keys are independent; memory is pruned', () => {
  const k = new KeyedInterval(1000, 3);
  assert.ok(k.take('a', 0));
  assert.not.ok(k.take('a', 999));
  assert.ok(k.take('b', 999));
  assert.ok(k.take('a', 1000));
  for (let i = 0; i < 10; i++) k.take(`x${i}`, 5000 + i * 1000);
  assert.ok((k as unknown as { last: Map<string, number> }).last.size <= 4);
});

function guarded(max: number) {
  const stream = new PassThrough();
  const refused: [number, number][] = [];
  guardPacketSize(stream as unknown as Socket, max, (type, declared) => refused.push([type, declared]));
  return { stream, refused, readAll: () => { const out: Buffer[] = []; let c; while ((c = stream.read()) !== null) out.push(c); return Buffer.concat(out); } };
}

test('guardPacketSize passes packets within the limit, split anywhere, and skips bodies by count', () => {
  const g = guarded(1000);
  const data = Buffer.concat([publishPacket('a/b', 'x'.repeat(900)), publishPacket('c', Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])), Buffer.from([0xc0, 0])]);
  let seen = 0;
  for (let i = 0; i < data.length; i += 7) {
    g.stream.write(data.subarray(i, i + 7));
    seen += g.readAll().length;
  }
  assert.is(seen, data.length);
  assert.equal(g.refused, []);
});

test('guardPacketSize refuses a declared length over the limit from the fixed header, before the body', () => {
  const g = guarded(131_584);
  g.stream.write(Buffer.concat([Buffer.from([0x30]), remainingLength(64 * 1024 * 1024)]));
  assert.is(g.readAll().length, 0);
  assert.equal(g.refused, [[3, 64 * 1024 * 1024]]);
  // A fifth length byte is malformed: refused too.
  const m = guarded(1 << 30);
  m.stream.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x80, 0x01]));
  assert.is(m.readAll().length, 0);
  assert.is(m.refused.length, 1);
});

test.run();
