/**
 * The native addon against the real kernel: needs root, clang, iproute2 and a kernel with BPF
 * ring buffers and batch map operations. The test object is compiled from
 * test/fixtures/native_fixture.bpf.c; XDP attach/detach runs in child processes inside two
 * network namespaces (198.18.0.0/30, no routes out) that afterAll deletes.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';

import {
  addonPath,
  BpfError,
  BpfMap,
  BpfObject,
  libbpfVersion,
  numPossibleCpus,
  RingBuffer,
  takeLibbpfLog,
  XdpAction,
} from '../../native/bpf';

const FIXTURES = path.join(__dirname, '..', 'fixtures');
const XDP_TOOLS_DIR = '/usr/lib/x86_64-linux-gnu/bpf';
const PIN_DIR = `/sys/fs/bpf/xdp-ids-test-${process.pid}`;
const NS_A = `ids-nt-${process.pid}`;
const NS_B = `ids-nt-${process.pid}-b`;
const EVENT_MAGIC = 0x1d5c0de;

let tmp: string;
let objPath: string;
let badObjPath: string;
/** native/bpf.ts transpiled to JS, for child processes. */
let bpfJs: string;

function compile(src: string, out: string): void {
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', src, '-o', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function openLoaded(opts?: Parameters<typeof BpfObject.open>[1]): BpfObject {
  const obj = BpfObject.open(objPath, opts);
  try {
    obj.load();
  } catch (e) {
    obj.close();
    throw e;
  }
  return obj;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function lpmKey(prefixlen: number, a: number, b: number, c: number, d: number): Buffer {
  return Buffer.from([prefixlen, 0, 0, 0, a, b, c, d]);
}

/** A 64-byte Ethernet/IPv4 frame; only the Ethernet addresses matter to the fixture. */
function frame(): Buffer {
  const f = Buffer.alloc(64);
  Buffer.from([0x02, 0, 0, 0, 0, 0x01]).copy(f, 0); // dst
  Buffer.from([0x02, 0, 0, 0, 0, 0x02]).copy(f, 6); // src
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  return f;
}

function expectBpfError(fn: () => unknown, code: string, ...fragments: string[]): BpfError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(BpfError);
  const err = caught as BpfError;
  expect(err.code).toBe(code);
  expect(err.errno).toBeGreaterThan(0);
  expect(err.message).toContain(`(${code})`);
  for (const f of fragments) expect(err.message).toContain(f);
  return err;
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-native-'));
  objPath = path.join(tmp, 'native_fixture.bpf.o');
  badObjPath = path.join(tmp, 'native_bad.bpf.o');
  compile(path.join(FIXTURES, 'native_fixture.bpf.c'), objPath);
  compile(path.join(FIXTURES, 'native_bad.bpf.c'), badObjPath);
  const src = fs.readFileSync(path.join(__dirname, '..', '..', 'native', 'bpf.ts'), 'utf8');
  bpfJs = path.join(tmp, 'bpf.js');
  fs.writeFileSync(
    bpfJs,
    ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText,
  );
});

let childSeq = 0;

/** Runs a JS body in a child node (optionally inside a network namespace) with `bpf` and `OBJ` defined. */
function runChild(body: string, netns?: string): { status: number | null; stdout: string; stderr: string } {
  const file = path.join(tmp, `child-${++childSeq}.js`);
  fs.writeFileSync(
    file,
    [
      "'use strict';",
      `const bpf = require(${JSON.stringify(bpfJs)});`,
      `const OBJ = ${JSON.stringify(objPath)};`,
      'const out = (v) => process.stdout.write(JSON.stringify(v));',
      'const sleep = (ms) => new Promise((r) => setTimeout(r, ms));',
      body,
    ].join('\n'),
  );
  const cmd = netns === undefined ? [process.execPath, file] : ['ip', 'netns', 'exec', netns, process.execPath, file];
  const r = spawnSync(cmd[0], cmd.slice(1), {
    encoding: 'utf8',
    env: { ...process.env, XDP_IDS_NATIVE_ADDON: addonPath() },
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

afterAll(() => {
  fs.rmSync(PIN_DIR, { recursive: true, force: true });
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('module', () => {
  test('reports the libbpf version and possible CPUs', () => {
    expect(libbpfVersion()).toMatch(/^v1\.\d+/);
    expect(numPossibleCpus()).toBeGreaterThanOrEqual(1);
  });

  test('addon path resolves from the source tree', () => {
    expect(fs.existsSync(addonPath())).toBe(true);
  });
});

describe('BpfObject', () => {
  test('open, load, inspect and close', () => {
    const obj = BpfObject.open(objPath);
    expect(obj.name).toBe('native_fixture');
    expect(obj.loaded).toBe(false);
    expect(obj.programs().sort()).toEqual(['fx_pass', 'fx_xdp']);
    expect(obj.maps()).toEqual(expect.arrayContaining(['fx_src', 'fx_small', 'fx_percpu', 'fx_lpm', 'fx_action', 'fx_events']));
    expect(obj.mapInfo('fx_src').fd).toBe(-1);
    expectBpfError(() => obj.mapFd('fx_src'), 'EINVAL', 'bpf_map__fd(fx_src)', 'not loaded');

    obj.load();
    expect(obj.loaded).toBe(true);
    expect(obj.programFd()).toBeGreaterThan(0);
    expect(obj.programFd('fx_pass')).toBeGreaterThan(0);
    expect(obj.mapFd('fx_src')).toBeGreaterThan(0);
    const info = obj.mapInfo('fx_src');
    expect(info).toMatchObject({ typeName: 'lru_hash', keySize: 16, valueSize: 176, maxEntries: 131072, internal: false });
    expect(info.fd).toBeGreaterThan(0);
    expect(obj.mapInfo('fx_events').typeName).toBe('ringbuf');

    obj.close();
    obj.close();
    expect(obj.closed).toBe(true);
    expectBpfError(() => obj.programFd(), 'EBADF', 'closed');
    expectBpfError(() => obj.load(), 'EBADF', 'bpf_object__load(native_fixture)');
  });

  test('maxEntries overrides map sizes before load', () => {
    const obj = openLoaded({ maxEntries: { fx_small: 2, fx_lpm: 3 } });
    try {
      expect(obj.mapInfo('fx_small').maxEntries).toBe(2);
      expect(obj.map('fx_lpm').maxEntries).toBe(3);
      const lpm = obj.map('fx_lpm');
      for (let i = 0; i < 3; i++) lpm.update(lpmKey(24, 198, 18, i, 0), u32(i));
      const err = expectBpfError(() => lpm.update(lpmKey(24, 198, 18, 9, 0), u32(9)), 'ENOSPC');
      expect(err.message).toBe('bpf_map_update_elem(fx_lpm): No space left on device (ENOSPC)');
      expect(err.op).toBe('bpf_map_update_elem');
      expect(err.target).toBe('fx_lpm');
    } finally {
      obj.close();
    }
    expect(() => BpfObject.open(objPath, { maxEntries: { fx_small: 0 } })).toThrow(RangeError);
    expect(() => BpfObject.open(objPath, { maxEntries: { fx_small: 'x' as unknown as number } })).toThrow(TypeError);
    expectBpfError(() => BpfObject.open(objPath, { maxEntries: { nope: 1 } }), 'ENOENT', 'nope', 'fx_small');
  });

  test('missing files, unknown names and bad arguments throw', () => {
    const missing = path.join(tmp, 'missing.o');
    const err = expectBpfError(() => BpfObject.open(missing), 'ENOENT', `bpf_object__open_file(${missing})`);
    expect(err.log).toContain('failed to open');
    expect(() => BpfObject.open(42 as unknown as string)).toThrow(TypeError);
    expect(() => BpfObject.open(objPath, { pinDir: 'relative/dir' })).toThrow(TypeError);

    const obj = openLoaded();
    try {
      expectBpfError(() => obj.mapFd('no_such_map'), 'ENOENT', 'bpf_object__find_map_by_name(no_such_map)', 'fx_src');
      expectBpfError(() => obj.programFd('no_such_prog'), 'ENOENT', 'no_such_prog', 'fx_xdp');
      expectBpfError(() => obj.map('nope'), 'ENOENT');
    } finally {
      obj.close();
    }
  });

  test('a verifier rejection carries the verifier log', () => {
    const obj = BpfObject.open(badObjPath);
    try {
      const err = expectBpfError(() => obj.load(), 'EACCES', 'bpf_object__load(native_bad)', 'invalid access to packet');
      expect(err.log).toContain('BEGIN PROG LOAD LOG');
    } finally {
      obj.close();
    }
    expect(takeLibbpfLog()).not.toContain('invalid access to packet');
  });

  test('an xdp-tools object loads and runs standalone', () => {
    const file = path.join(XDP_TOOLS_DIR, 'xdpfilt_alw_all.o');
    // Its maps ask to be pinned by name; keep them out of /sys/fs/bpf itself.
    const obj = BpfObject.open(file, { pinDir: `${PIN_DIR}-xdp-tools` });
    try {
      obj.load();
      expect(obj.programs()).toEqual(['xdpfilt_alw_all']);
      expect(obj.maps()).toContain('xdp_stats_map');
      const { retval } = obj.testRun(frame());
      expect(Object.values(XdpAction)).toContain(retval);
    } finally {
      obj.close();
      fs.rmSync(`${PIN_DIR}-xdp-tools`, { recursive: true, force: true });
    }
  });
});

describe('testRun', () => {
  let obj: BpfObject;
  beforeAll(() => {
    obj = openLoaded();
  });
  afterAll(() => obj.close());

  test('returns the action and the packet as the program left it', () => {
    const pkt = frame();
    const pass = obj.testRun(pkt);
    expect(pass.retval).toBe(XdpAction.PASS);
    expect(pass.dataOut.equals(pkt)).toBe(true);
    expect(pass.durationNs).toBeGreaterThanOrEqual(0);

    obj.map('fx_action').update(u32(0), u32(XdpAction.TX));
    const tx = obj.testRun(pkt); // with repeat the kernel reruns on the same, already swapped, buffer
    expect(tx.retval).toBe(XdpAction.TX);
    expect(tx.dataOut.subarray(0, 6).equals(pkt.subarray(6, 12))).toBe(true);
    expect(tx.dataOut.subarray(6, 12).equals(pkt.subarray(0, 6))).toBe(true);
    expect(tx.dataOut.subarray(12).equals(pkt.subarray(12))).toBe(true);
    expect(obj.testRun(pkt, { programName: 'fx_pass' }).retval).toBe(XdpAction.PASS);
    obj.map('fx_action').update(u32(0), u32(XdpAction.PASS));
  });

  test('rejects bad input', () => {
    expect(() => obj.testRun('abc' as unknown as Buffer)).toThrow(TypeError);
    expect(() => obj.testRun(frame(), { repeat: -1 })).toThrow(RangeError);
    expectBpfError(() => obj.testRun(Buffer.alloc(4)), 'EINVAL', 'bpf_prog_test_run_opts(fx_xdp)');
    expectBpfError(() => obj.testRun(frame(), { programName: 'nope' }), 'ENOENT', 'nope');
  });

  test('per-CPU values are padded per possible CPU', () => {
    const percpu = obj.map('fx_percpu');
    const ncpu = numPossibleCpus();
    expect(percpu.perCpu).toBe(true);
    expect(percpu.valueBufferSize).toBe(ncpu * 8);
    const sum = (): number =>
      percpu.splitPerCpu(percpu.lookup(u32(0))!).reduce((acc, v) => acc + v.readUInt32LE(0), 0);
    const before = sum();
    obj.testRun(frame(), { repeat: 25 });
    expect(sum() - before).toBe(25);

    const value = Buffer.alloc(percpu.valueBufferSize);
    for (let cpu = 0; cpu < ncpu; cpu++) value.writeUInt32LE(100 + cpu, cpu * 8);
    percpu.update(u32(3), value);
    expect(percpu.splitPerCpu(percpu.lookup(u32(3))!).map((v) => v.readUInt32LE(0))).toEqual(
      Array.from({ length: ncpu }, (_, cpu) => 100 + cpu),
    );
    const batch = percpu.lookupBatch();
    expect(batch.count).toBe(4);
    expect(batch.values.length).toBe(4 * percpu.valueBufferSize);
    expect(() => percpu.update(u32(0), Buffer.alloc(4))).toThrow(/must be \d+ bytes/);
  });
});

describe('map operations', () => {
  let obj: BpfObject;
  beforeAll(() => {
    obj = openLoaded();
  });
  afterAll(() => obj.close());

  test('CRUD and iteration on a hash map', () => {
    const m = obj.map('fx_small');
    expect(m).toMatchObject({ keySize: 4, valueSize: 8, maxEntries: 4, typeName: 'hash', perCpu: false });
    expect(m.lookup(u32(1))).toBeUndefined();
    expect(m.getNextKey()).toBeUndefined();
    m.update(u32(1), u64(11));
    m.update(u32(2), u64(22), 'noexist');
    expect(m.lookup(u32(1))!.readBigUInt64LE()).toBe(11n);
    m.update(u32(1), u64(12), 'exist');
    expect(m.lookup(u32(1))!.readBigUInt64LE()).toBe(12n);
    expectBpfError(() => m.update(u32(2), u64(0), 'noexist'), 'EEXIST', 'bpf_map_update_elem(fx_small)');
    expectBpfError(() => m.update(u32(3), u64(0), 'exist'), 'ENOENT', 'bpf_map_update_elem(fx_small)');

    const keys = [...m.keys()].map((k) => k.readUInt32LE()).sort();
    expect(keys).toEqual([1, 2]);
    const first = m.getNextKey()!;
    const second = m.getNextKey(first)!;
    expect(m.getNextKey(second)).toBeUndefined();
    expect(new Map([...m.entries()].map(([k, v]) => [k.readUInt32LE(), v.readBigUInt64LE()]))).toEqual(
      new Map([
        [1, 12n],
        [2, 22n],
      ]),
    );

    m.update(u32(3), u64(33));
    m.update(u32(4), u64(44));
    expectBpfError(() => m.update(u32(5), u64(55)), 'E2BIG', 'bpf_map_update_elem(fx_small)');

    expect(m.delete(u32(1))).toBe(true);
    expect(m.delete(u32(1))).toBe(false);
    expect(m.deleteBatch(Buffer.concat([u32(2), u32(9), u32(3)]))).toBe(2);
    expect(m.lookupBatch().count).toBe(1);
    expect(m.deleteBatch(Buffer.concat([u32(4), u32(4)]), 1)).toBe(1);
    expect(m.lookupBatch().count).toBe(0);
  });

  test('argument checks', () => {
    const m = obj.map('fx_small');
    expect(() => m.lookup(Buffer.alloc(3))).toThrow(RangeError);
    expect(() => m.lookup(Buffer.alloc(3))).toThrow('bpf_map_lookup_elem(fx_small): key must be 4 bytes, got 3');
    expect(() => m.lookup('abcd' as unknown as Buffer)).toThrow(TypeError);
    expect(() => m.update(u32(1), Buffer.alloc(4))).toThrow(RangeError);
    expect(() => m.update(u32(1), u64(1), 'sometimes' as 'any')).toThrow(TypeError);
    expect(() => m.deleteBatch(Buffer.alloc(6))).toThrow(RangeError);
    expect(() => m.deleteBatch(Buffer.alloc(8), 3)).toThrow(RangeError);
    expect(() => m.lookupBatch({ maxCount: -1 })).toThrow(RangeError);
    expect(() => m.lookup(new Uint8Array(4))).not.toThrow();
  });

  test('batch lookup of 100,000 entries of 16 + 176 bytes', () => {
    const m = obj.map('fx_src');
    const n = 100_000;
    const keys = Buffer.alloc(n * 16);
    const values = Buffer.alloc(n * 176);
    for (let i = 0; i < n; i++) {
      keys.writeUInt32BE(i, i * 16 + 12);
      values.writeUInt32LE(i, i * 176);
      values.writeUInt32LE(~i >>> 0, i * 176 + 172);
    }
    m.updateBatch(keys, values);
    const batch = m.lookupBatch();
    expect(batch.count).toBe(n);
    expect(batch.keys.length).toBe(n * 16);
    expect(batch.values.length).toBe(n * 176);
    const seen = new Uint8Array(n);
    let mismatched = 0;
    for (let i = 0; i < batch.count; i++) {
      const id = batch.keys.readUInt32BE(i * 16 + 12);
      if (batch.values.readUInt32LE(i * 176) !== id || batch.values.readUInt32LE(i * 176 + 172) !== ~id >>> 0) {
        mismatched++;
      }
      seen[id] = 1;
    }
    expect(mismatched).toBe(0);
    expect(seen.every((s) => s === 1)).toBe(true);

    const limited = m.lookupBatch({ maxCount: 10_000 });
    expect(limited.count).toBeLessThanOrEqual(10_000);
    expect(limited.count).toBeGreaterThan(9_000);

    // Read into the caller's buffers when they are large enough, spill over when they are not.
    const into = { keys: Buffer.alloc((n + 5) * 16), values: Buffer.alloc((n + 5) * 176) };
    const reused = m.lookupBatch({ into });
    expect(reused.keys.buffer).toBe(into.keys.buffer);
    expect(reused.keys.length).toBe(n * 16);
    expect(reused.values.equals(batch.values)).toBe(true);
    const small = { keys: Buffer.alloc(1000 * 16), values: Buffer.alloc(1000 * 176) };
    const spilled = m.lookupBatch({ into: small });
    expect(spilled.keys.buffer).not.toBe(small.keys.buffer);
    expect(spilled.count).toBe(n);
    expect(spilled.values.equals(batch.values)).toBe(true);

    const drained = m.lookupAndDeleteBatch();
    expect(drained.count).toBe(n);
    expect(m.lookupBatch().count).toBe(0);
    expect(m.getNextKey()).toBeUndefined();

  });

  test('LPM trie: longest-prefix lookup, iteration and the non-batch fallback', () => {
    const m = obj.map('fx_lpm');
    expect(m.typeName).toBe('lpm_trie');
    m.update(lpmKey(16, 198, 18, 0, 0), u32(16));
    m.update(lpmKey(24, 198, 18, 7, 0), u32(24));
    m.update(lpmKey(32, 198, 19, 1, 1), u32(32));
    expect(m.lookup(lpmKey(32, 198, 18, 7, 9))!.readUInt32LE()).toBe(24);
    expect(m.lookup(lpmKey(32, 198, 18, 8, 9))!.readUInt32LE()).toBe(16);
    expect(m.lookup(lpmKey(32, 198, 20, 0, 1))).toBeUndefined();

    const batch = m.lookupBatch();
    expect(batch.count).toBe(3);
    const entries = [...m.entries()].map(([k, v]) => `${k[0]}:${[...k.subarray(4)].join('.')}=${v.readUInt32LE()}`);
    expect(entries.sort()).toEqual(['16:198.18.0.0=16', '24:198.18.7.0=24', '32:198.19.1.1=32']);
    expect([...m.keys()].length).toBe(3);

    expect(m.deleteBatch(Buffer.concat([lpmKey(32, 198, 19, 1, 1), lpmKey(8, 10, 0, 0, 0)]))).toBe(1);
    const drained = m.lookupAndDeleteBatch();
    expect(drained.count).toBe(2);
    expect(m.lookupBatch().count).toBe(0);

    m.updateBatch(Buffer.concat([lpmKey(24, 198, 18, 1, 0), lpmKey(24, 198, 18, 2, 0)]), Buffer.concat([u32(1), u32(2)]));
    expect(m.lookupBatch().count).toBe(2);
    m.deleteBatch(m.lookupBatch().keys);
    expect(m.getNextKey()).toBeUndefined();
  });

  test('a BpfMap keeps its own descriptor', () => {
    const other = openLoaded();
    const m = BpfMap.fromFd(other.mapFd('fx_small'), 'fx_small');
    other.close();
    m.update(u32(7), u64(70));
    expect(m.lookup(u32(7))!.readBigUInt64LE()).toBe(70n);
    m.close();
    m.close();
    expect(m.closed).toBe(true);
    expectBpfError(() => m.lookup(u32(7)), 'EBADF', 'fx_small');
    expect(() => BpfMap.fromFd(-1)).toThrow(RangeError);
    expectBpfError(() => BpfMap.fromFd(0), 'EINVAL', 'bpf_obj_get_info_by_fd');
  });
});

describe('pinning', () => {
  test('a reopened object reuses its pinned maps', () => {
    const first = openLoaded({ pinDir: PIN_DIR });
    try {
      expect(first.mapInfo('fx_small').pinPath).toBe(`${PIN_DIR}/fx_small`);
      first.map('fx_small').update(u32(1), u64(4242));
      first.map('fx_lpm').update(lpmKey(24, 198, 18, 5, 0), u32(5));
    } finally {
      first.close();
    }
    const pinned = fs.readdirSync(PIN_DIR).sort();
    expect(pinned).toEqual(['fx_action', 'fx_events', 'fx_lpm', 'fx_percpu', 'fx_small', 'fx_src']);

    const second = openLoaded({ pinDir: PIN_DIR });
    try {
      expect(second.map('fx_small').lookup(u32(1))!.readBigUInt64LE()).toBe(4242n);
      expect(second.map('fx_lpm').lookup(lpmKey(32, 198, 18, 5, 1))!.readUInt32LE()).toBe(5);
    } finally {
      second.close();
    }

    const fromPin = BpfMap.fromPinned(`${PIN_DIR}/fx_small`);
    try {
      expect(fromPin.name).toBe('fx_small');
      expect(fromPin.lookup(u32(1))!.readBigUInt64LE()).toBe(4242n);
    } finally {
      fromPin.close();
    }
    expectBpfError(() => BpfMap.fromPinned(`${PIN_DIR}/nope`), 'ENOENT', `bpf_obj_get(${PIN_DIR}/nope)`);
  });

  test('a pinned map with other parameters is reported, not replaced', () => {
    const obj = BpfObject.open(objPath, { pinDir: PIN_DIR, maxEntries: { fx_small: 8 } });
    try {
      const err = expectBpfError(() => obj.load(), 'EINVAL', 'bpf_object__load(native_fixture)');
      expect(err.message).toMatch(/couldn't reuse pinned map/);
    } finally {
      obj.close();
    }
  });

  test('pinDir must be on bpffs', () => {
    expectBpfError(() => BpfObject.open(objPath, { pinDir: path.join(tmp, 'pins') }), 'EINVAL', 'not on a bpf filesystem');
  });
});

describe('RingBuffer', () => {
  let obj: BpfObject;
  beforeAll(() => {
    obj = openLoaded();
  });
  afterAll(() => obj.close());

  test('delivers events written by test_run packets', async () => {
    const events: Buffer[] = [];
    const batches: number[] = [];
    const rb = new RingBuffer(obj.map('fx_events'), (evs) => {
      batches.push(evs.length);
      events.push(...evs);
    });
    try {
      const pkt = frame();
      for (let i = 0; i < 10; i++) obj.testRun(pkt);
      await waitFor(() => events.length >= 10);
      expect(events.length).toBe(10);
      const seqs = events.map((e) => Number(e.readBigUInt64LE(8)));
      for (const e of events) {
        expect(e.length).toBe(32);
        expect(e.readUInt32LE(0)).toBe(EVENT_MAGIC);
        expect(e.readUInt32LE(4)).toBe(pkt.length);
        expect(e.subarray(16, 32).equals(pkt.subarray(0, 16))).toBe(true);
      }
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(rb.stats()).toMatchObject({ delivered: 10, dropped: 0 });
      expect(batches.reduce((a, b) => a + b, 0)).toBe(10);
    } finally {
      rb.close();
    }
    rb.close();
    expect(rb.closed).toBe(true);

    obj.testRun(frame(), { repeat: 5 });
    await new Promise((r) => setTimeout(r, 300));
    expect(events.length).toBe(10);
  });

  test('accounts for every event under a burst', async () => {
    let received = 0;
    const rb = new RingBuffer(obj.mapFd('fx_events'), (evs) => {
      received += evs.length;
    });
    try {
      await new Promise((r) => setTimeout(r, 300)); // events left over from earlier tests
      const base = rb.stats();
      const baseReceived = received;
      obj.testRun(frame(), { repeat: 3000 });
      await waitFor(() => {
        const s = rb.stats();
        return s.delivered + s.dropped >= base.delivered + base.dropped + 3000;
      });
      const s = rb.stats();
      expect(s.delivered + s.dropped - base.delivered - base.dropped).toBe(3000);
      expect(received - baseReceived).toBe(s.delivered - base.delivered);
      expect(s.error).toBeUndefined();
      console.log(`ring buffer burst of 3000 events: ${s.deliveredBatches} batches delivered, ${s.droppedBatches} dropped`);
    } finally {
      rb.close();
    }
  });

  test('an exception in onEvents is an uncaught exception, not a crash or a warning', () => {
    const r = runChild(`
      const obj = bpf.BpfObject.open(OBJ);
      obj.load();
      new bpf.RingBuffer(obj.map('fx_events'), () => { throw new Error('boom from onEvents'); });
      obj.testRun(Buffer.alloc(64));
    `);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('boom from onEvents');
  });

  test('an open ring buffer keeps the process alive unless unref()ed, and exit never crashes', () => {
    const unrefd = runChild(`
      const obj = bpf.BpfObject.open(OBJ);
      obj.load();
      new bpf.RingBuffer(obj.map('fx_events'), () => {}).unref();
      process.on('exit', () => out({ exited: true }));
    `);
    expect(unrefd).toMatchObject({ status: 0, stdout: '{"exited":true}' });

    const exiting = runChild(`
      const obj = bpf.BpfObject.open(OBJ);
      obj.load();
      let n = 0;
      new bpf.RingBuffer(obj.map('fx_events'), (evs) => { n += evs.length; });
      setInterval(() => obj.testRun(Buffer.alloc(64), { repeat: 100 }), 1);
      setTimeout(() => { out({ n }); process.exit(0); }, 200);
    `);
    expect(exiting.status).toBe(0);
    expect(JSON.parse(exiting.stdout).n).toBeGreaterThan(0);
  });

  test('rejects maps that are not ring buffers and bad callbacks', () => {
    expectBpfError(() => new RingBuffer(obj.map('fx_small'), () => undefined), 'EINVAL', 'ring_buffer__new(fx_small)', 'not ringbuf');
    expect(() => new RingBuffer(obj.mapFd('fx_events'), 'x' as unknown as () => void)).toThrow(TypeError);
    let bad: unknown;
    try {
      new RingBuffer(987654, () => undefined);
    } catch (e) {
      bad = e;
    }
    expect(bad).toBeInstanceOf(BpfError);
    expect((bad as BpfError).code).toMatch(/^EBADFD?$/); // EBADFD on recent kernels
    expect((bad as BpfError).message).toContain('bpf_obj_get_info_by_fd(fd 987654)');
  });
});

describe('XDP attach errors', () => {
  test('a nonexistent interface is reported with errno', () => {
    const obj = openLoaded();
    const ifindex = 0x7ffffff0;
    try {
      expectBpfError(() => obj.attachXdp(ifindex, 'native'), 'ENODEV', `bpf_xdp_attach(fx_xdp on ifindex ${ifindex})`);
      expectBpfError(() => obj.attachXdp(ifindex, 'auto'), 'ENODEV', 'native mode failed first');
      expectBpfError(() => BpfObject.queryXdp(ifindex), 'ENODEV', 'bpf_xdp_query');
      expectBpfError(() => BpfObject.detachXdp(ifindex), 'ENODEV', 'bpf_xdp_detach');
      expect(() => obj.attachXdp(0, 'native')).toThrow(RangeError);
      expect(() => obj.attachXdp(1.5, 'native')).toThrow(RangeError);
      expect(() => obj.attachXdp(ifindex, 'fast' as 'native')).toThrow(TypeError);
    } finally {
      obj.close();
    }
    const unloaded = BpfObject.open(objPath);
    try {
      expectBpfError(() => unloaded.attachXdp(1, 'generic'), 'EINVAL', 'not loaded');
    } finally {
      unloaded.close();
    }
  });
});

/**
 * Attaching needs the process inside the namespace, so each step runs as a child
 * (`ip netns exec`) using bpf.ts transpiled to JS; a child that exits without detaching is
 * also how a crashed sensor looks to the next one.
 */
describe('XDP on a veth pair in a network namespace', () => {
  function ip(...args: string[]): string {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  function inNamespace<T>(body: string): T {
    const r = runChild(
      [
        "const fs = require('fs');",
        "const { spawnSync } = require('child_process');",
        "const ifindex = Number(fs.readFileSync('/sys/class/net/ids0/ifindex', 'utf8'));",
        `const sendUdp = (count) => spawnSync('ip', ['netns', 'exec', ${JSON.stringify(NS_B)}, process.execPath, '-e',`,
        "  `const s = require('dgram').createSocket('udp4'); let n = 0;" +
          " const next = () => s.send('xdp-ids', 9, '198.18.0.1', () => (++n < ${count} ? next() : s.close())); next();`]);",
        '(async () => {',
        body,
        '})().catch((e) => { out({ error: String(e && e.message), code: e && e.code }); process.exit(3); });',
      ].join('\n'),
      NS_A,
    );
    if (r.status !== 0) throw new Error(`child exited with ${r.status}: ${r.stdout} ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Attach, send 5 UDP packets from the peer namespace, count them, exit without detaching. */
  function attachAndCount(mode: string): { used: string; status: { mode: string; progId: number }; udp: number } {
    return inNamespace(`
      const obj = bpf.BpfObject.open(OBJ);
      obj.load();
      const events = [];
      const rb = new bpf.RingBuffer(obj.map('fx_events'), (evs) => events.push(...evs));
      const used = obj.attachXdp(ifindex, ${JSON.stringify(mode)});
      const status = bpf.BpfObject.queryXdp(ifindex);
      sendUdp(5);
      const udp = () => events.filter((e) => e.readUInt32LE(0) === ${EVENT_MAGIC} && e.readUInt16BE(28) === 0x0800).length;
      for (let i = 0; i < 300 && udp() < 5; i++) await sleep(10);
      out({ used, status, udp: udp() });
      process.exit(0); // ring buffer still open: exit must not crash
    `);
  }

  beforeAll(() => {
    ip('netns', 'add', NS_A);
    ip('netns', 'add', NS_B);
    for (const ns of [NS_A, NS_B]) {
      execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    ip('-n', NS_A, 'link', 'add', 'ids0', 'type', 'veth', 'peer', 'name', 'ids1', 'netns', NS_B);
    ip('-n', NS_A, 'addr', 'add', '198.18.0.1/30', 'dev', 'ids0');
    ip('-n', NS_B, 'addr', 'add', '198.18.0.2/30', 'dev', 'ids1');
    ip('-n', NS_A, 'link', 'set', 'ids0', 'up');
    ip('-n', NS_B, 'link', 'set', 'ids1', 'up');
    const [{ address }] = JSON.parse(ip('-j', '-n', NS_A, 'link', 'show', 'ids0')) as { address: string }[];
    ip('-n', NS_B, 'neigh', 'replace', '198.18.0.1', 'lladdr', address, 'dev', 'ids1', 'nud', 'permanent');
  });

  afterAll(() => {
    for (const ns of [NS_A, NS_B]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // not created
      }
    }
  });

  test('native mode: attach, see traffic, detach from another process', () => {
    const r = attachAndCount('native');
    expect(r.used).toBe('native');
    expect(r.status.mode).toBe('native');
    expect(r.status.progId).toBeGreaterThan(0);
    expect(r.udp).toBe(5);

    const after = inNamespace<{ before: { mode: string; progId: number }; detached: boolean; again: boolean; now: { mode: string } }>(`
      const before = bpf.BpfObject.queryXdp(ifindex);
      const detached = bpf.BpfObject.detachXdp(ifindex);
      const now = bpf.BpfObject.queryXdp(ifindex);
      const again = bpf.BpfObject.detachXdp(ifindex);
      out({ before, detached, now, again });
    `);
    expect(after.before).toMatchObject({ mode: 'native', progId: r.status.progId });
    expect(after.detached).toBe(true);
    expect(after.now.mode).toBe('none');
    expect(after.again).toBe(false);
  });

  test('generic mode: attach, see traffic, detach from another process', () => {
    const r = attachAndCount('generic');
    expect(r.used).toBe('generic');
    expect(r.status.mode).toBe('generic');
    expect(r.udp).toBe(5);

    const after = inNamespace<{ native: boolean; generic: boolean; now: { mode: string } }>(`
      const native = bpf.BpfObject.detachXdp(ifindex, 'native');
      const generic = bpf.BpfObject.detachXdp(ifindex, 'generic');
      out({ native, generic, now: bpf.BpfObject.queryXdp(ifindex) });
    `);
    expect(after).toEqual({ native: false, generic: true, now: expect.objectContaining({ mode: 'none' }) });
  });

  test('auto prefers native, replaces our own program, and falls back to generic', () => {
    const r = inNamespace<Record<string, unknown>>(`
      const obj = bpf.BpfObject.open(OBJ);
      obj.load();
      const auto = obj.attachXdp(ifindex, 'auto');
      const first = bpf.BpfObject.queryXdp(ifindex);
      obj.attachXdp(ifindex, 'native', 'fx_pass');
      const replaced = bpf.BpfObject.queryXdp(ifindex);
      bpf.BpfObject.detachXdp(ifindex);

      obj.attachXdp(ifindex, 'generic');
      let conflict;
      try { obj.attachXdp(ifindex, 'native'); } catch (e) { conflict = { code: e.code, message: e.message, isBpfError: e instanceof bpf.BpfError }; }
      const fallback = obj.attachXdp(ifindex, 'auto', 'fx_pass');
      const fallbackStatus = bpf.BpfObject.queryXdp(ifindex);
      bpf.BpfObject.detachXdp(ifindex);
      out({ auto, first, replaced, conflict, fallback, fallbackStatus, end: bpf.BpfObject.queryXdp(ifindex), log: obj.log });
      obj.close();
    `);
    expect(r.auto).toBe('native');
    const first = r.first as { mode: string; progId: number };
    const replaced = r.replaced as { mode: string; progId: number };
    expect(first.mode).toBe('native');
    expect(replaced.mode).toBe('native');
    expect(replaced.progId).not.toBe(first.progId);
    expect(r.conflict).toMatchObject({ code: 'EEXIST', isBpfError: true });
    expect((r.conflict as { message: string }).message).toContain('bpf_xdp_attach(fx_xdp on ifindex');
    expect(r.fallback).toBe('generic');
    expect(r.fallbackStatus).toMatchObject({ mode: 'generic' });
    expect(r.log).toContain('fell back to generic');
    expect(r.end).toMatchObject({ mode: 'none', progId: 0 });
  });
});
