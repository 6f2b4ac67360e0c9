/**
 * Typed access to libbpf through the xdp_ids_native addon (native/src). This module is the only
 * code that touches the addon; it translates between libbpf and JS values and nothing else.
 *
 * Every libbpf failure is thrown as a BpfError whose message reads
 * "op(target): strerror (CODE)", followed by libbpf's own log when it printed one (a verifier
 * log on a load failure). Invalid arguments throw TypeError or RangeError.
 */
import * as fs from 'fs';
import * as path from 'path';

export type XdpMode = 'native' | 'generic';
export type XdpAttachMode = XdpMode | 'auto';
export type XdpAttachedMode = 'none' | 'native' | 'generic' | 'offload' | 'multi';
export type UpdateFlag = 'any' | 'noexist' | 'exist';

/** XDP program return codes (enum xdp_action). */
export const XdpAction = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;

export interface OpenOptions {
  /**
   * Directory on bpffs where every map (except .rodata/.data/.bss) is pinned as
   * `${pinDir}/${mapName}`; load() reuses maps already pinned there, so counters and block
   * lists survive a restart. Created if missing; /sys/fs/bpf is mounted if it is not bpffs.
   */
  pinDir?: string;
  /** Map name -> max_entries, overriding the object's values before load(). */
  maxEntries?: Record<string, number>;
}

export interface MapInfo {
  /** -1 before load(). */
  fd: number;
  type: number;
  typeName: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  pinPath?: string;
  /** .rodata, .data, .bss, .kconfig */
  internal: boolean;
}

export interface XdpStatus {
  /** The attached program, or with mode 'multi' the native one (else generic). 0 if none. */
  progId: number;
  mode: XdpAttachedMode;
  nativeProgId: number;
  genericProgId: number;
  offloadProgId: number;
}

export interface TestRunOptions {
  /** Runs of the program; the kernel reports the average duration. Default 1. */
  repeat?: number;
  /** Default: the object's first program. */
  programName?: string;
}

export interface TestRunResult {
  retval: number;
  /** Kernel-measured average nanoseconds per run. */
  durationNs: number;
  dataOut: Buffer;
}

export interface BatchOptions {
  /** Stop after this many entries (default: the whole map). */
  maxCount?: number;
  /**
   * Buffers to read into while they are large enough: a caller that reads a big map every tick
   * saves a page fault per 4 KiB of fresh memory. The result then views them.
   */
  into?: { keys: Buffer; values: Buffer };
}

/** `count` entries: key i is keys[i*keySize, (i+1)*keySize), value i likewise with valueBufferSize. */
export interface BatchResult {
  keys: Buffer;
  values: Buffer;
  count: number;
}

export interface RingBufferStats {
  /** Events handed to the onEvents callback. */
  delivered: number;
  /** Events discarded because the queue to the JS thread was full (JS too slow). */
  dropped: number;
  deliveredBatches: number;
  droppedBatches: number;
  /** Set when the poll thread stopped on an error. */
  error?: string;
}

export interface BpfErrorInfo {
  errno: number;
  code: string;
  op: string;
  target: string;
  log?: string;
}

export class BpfError extends Error {
  /** Positive errno value. */
  readonly errno: number;
  /** Symbolic errno, e.g. 'ENOSPC'. */
  readonly code: string;
  /** The failing libbpf/system call, e.g. 'bpf_map_update_elem'. */
  readonly op: string;
  /** The map, program, object, path or interface the call was about. */
  readonly target: string;
  /** Everything libbpf printed during the call (also appended to the message, trimmed). */
  readonly log: string | undefined;

  constructor(message: string, info: BpfErrorInfo) {
    super(message);
    this.name = 'BpfError';
    this.errno = info.errno;
    this.code = info.code;
    this.op = info.op;
    this.target = info.target;
    this.log = info.log;
  }
}

// ---- the addon's surface (native/src) ----

interface NativeMapInfo {
  fd: number;
  name: string;
  id: number;
  type: number;
  typeName: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  perCpu: boolean;
  valueBufferSize: number;
}

interface NativeBpfObject {
  readonly name: string;
  readonly log: string;
  readonly loaded: boolean;
  readonly closed: boolean;
  load(): void;
  close(): void;
  programs(): string[];
  programFd(name?: string): number;
  maps(): string[];
  mapFd(name: string): number;
  mapInfo(name: string): MapInfo;
  attachXdp(ifindex: number, mode: XdpAttachMode, programName?: string): XdpMode;
  attachTcEgress(ifindex: number, programName?: string): void;
  testRun(data: Uint8Array, opts?: TestRunOptions): TestRunResult;
}

interface NativeBpfMap {
  info(): NativeMapInfo;
  lookup(key: Uint8Array): Buffer | undefined;
  update(key: Uint8Array, value: Uint8Array, flags: UpdateFlag): void;
  delete(key: Uint8Array): boolean;
  getNextKey(key: Uint8Array | undefined): Buffer | undefined;
  lookupBatch(maxCount: number | undefined, keys?: Buffer, values?: Buffer): BatchResult;
  lookupAndDeleteBatch(maxCount: number | undefined, keys?: Buffer, values?: Buffer): BatchResult;
  deleteBatch(keys: Uint8Array, count: number | undefined): number;
  updateBatch(keys: Uint8Array, values: Uint8Array, count: number | undefined, flags: UpdateFlag): void;
  close(): void;
}

interface NativeRingBuffer {
  readonly closed: boolean;
  stats(): RingBufferStats;
  close(): void;
  ref(): void;
  unref(): void;
}

interface NativeAddon {
  BpfObject: {
    new (path: string, opts?: OpenOptions): NativeBpfObject;
    detachXdp(ifindex: number, mode?: XdpAttachMode): boolean;
    detachTcEgress(ifindex: number): boolean;
    queryXdp(ifindex: number): XdpStatus;
  };
  BpfMap: new (fdOrPinPath: number | string, name?: string) => NativeBpfMap;
  RingBuffer: new (mapFd: number, onBatch: (data: Buffer, offsets: Uint32Array) => void) => NativeRingBuffer;
  libbpfVersion(): string;
  numPossibleCpus(): number;
  setErrorClasses(
    bpfError: typeof BpfError,
    typeError: TypeErrorConstructor,
    rangeError: RangeErrorConstructor,
  ): void;
  takeLibbpfLog(): string;
}

const ADDON_RELATIVE = path.join('native', 'build', 'Release', 'xdp_ids_native.node');

/**
 * The addon is looked up by walking up from this file to the package root that has
 * native/build, so the same code works from native/ (ts-jest) and dist/native/ (tsc output).
 * XDP_IDS_NATIVE_ADDON overrides the path.
 */
export function addonPath(): string {
  const override = process.env.XDP_IDS_NATIVE_ADDON;
  if (override) return path.resolve(override);
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, ADDON_RELATIVE);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(
    `xdp_ids_native addon not found above ${__dirname} (looked for ${ADDON_RELATIVE}); ` +
      'build it with: npx node-gyp rebuild --directory native',
  );
}

let loadedAddon: NativeAddon | undefined;

/** Loaded on first use, so importing this module (e.g. for types or BpfError) needs no build. */
function addon(): NativeAddon {
  if (loadedAddon === undefined) {
    const mod = require(addonPath()) as NativeAddon;
    // From this module's realm, so instanceof works under jest/vm contexts too.
    mod.setErrorClasses(BpfError, TypeError, RangeError);
    loadedAddon = mod;
  }
  return loadedAddon;
}

export function libbpfVersion(): string {
  return addon().libbpfVersion();
}

export function numPossibleCpus(): number {
  return addon().numPossibleCpus();
}

/**
 * libbpf messages printed outside open()/load()/attach (those go into the thrown error or
 * BpfObject.log) since the last call; they never go to stderr. Keeps the last 64 KiB.
 */
export function takeLibbpfLog(): string {
  return addon().takeLibbpfLog();
}

/** Default 'warn'; 'debug' shows libbpf's map creation/reuse and relocation decisions. */

export class BpfObject {
  private readonly mapCache = new Map<string, BpfMap>();

  private constructor(
    private readonly native: NativeBpfObject,
    readonly path: string,
  ) {}

  static open(objectPath: string, opts?: OpenOptions): BpfObject {
    return new BpfObject(new (addon().BpfObject)(objectPath, opts), objectPath);
  }

  /**
   * Works from any process (e.g. after a crash): with no mode (or 'auto') it detaches whatever
   * is attached, in every mode. False when there was nothing to detach.
   */
  static detachXdp(ifindex: number, mode?: XdpAttachMode): boolean {
    return addon().BpfObject.detachXdp(ifindex, mode);
  }

  /** Removes this addon's TC egress filter (whoever attached it, e.g. a crashed sensor); false when there was none. */
  static detachTcEgress(ifindex: number): boolean {
    return addon().BpfObject.detachTcEgress(ifindex);
  }

  static queryXdp(ifindex: number): XdpStatus {
    return addon().BpfObject.queryXdp(ifindex);
  }

  get name(): string {
    return this.native.name;
  }

  /** libbpf warnings printed while opening, loading and attaching this object. */
  get log(): string {
    return this.native.log;
  }

  get loaded(): boolean {
    return this.native.loaded;
  }

  get closed(): boolean {
    return this.native.closed;
  }

  load(): void {
    this.native.load();
  }

  /** Also closes the BpfMaps handed out by map(). Idempotent. */
  close(): void {
    for (const m of this.mapCache.values()) m.close();
    this.mapCache.clear();
    this.native.close();
  }

  programs(): string[] {
    return this.native.programs();
  }

  /** Owned by this object: valid until close(). Default: the first program. */
  programFd(name?: string): number {
    return this.native.programFd(name);
  }

  maps(): string[] {
    return this.native.maps();
  }

  /** Owned by this object: valid until close(). */
  mapFd(name: string): number {
    return this.native.mapFd(name);
  }

  mapInfo(name: string): MapInfo {
    return this.native.mapInfo(name);
  }

  /**
   * One BpfMap per name, closed with this object. For a map that outlives the object use
   * BpfMap.fromFd(obj.mapFd(name), name).
   */
  map(name: string): BpfMap {
    let m = this.mapCache.get(name);
    if (m === undefined || m.closed) {
      m = BpfMap.fromFd(this.native.mapFd(name), name);
      this.mapCache.set(name, m);
    }
    return m;
  }

  /**
   * Attaches through netlink (the program stays attached if this process dies) and replaces a
   * program already attached in that mode. 'auto' tries native first, then generic.
   * Returns the mode that was used.
   */
  attachXdp(ifindex: number, mode: XdpAttachMode, programName?: string): XdpMode {
    return this.native.attachXdp(ifindex, mode, programName);
  }

  /** A `tc` program on the interface's egress (clsact), replacing an earlier one of ours. */
  attachTcEgress(ifindex: number, programName?: string): void {
    this.native.attachTcEgress(ifindex, programName);
  }

  testRun(data: Uint8Array, opts?: TestRunOptions): TestRunResult {
    return this.native.testRun(data, opts);
  }
}

export class BpfMap {
  readonly name: string;
  readonly id: number;
  readonly type: number;
  readonly typeName: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly perCpu: boolean;
  /** Bytes of a value as lookup() returns it: valueSize, or for per-CPU maps numPossibleCpus() * round_up(valueSize, 8). */
  readonly valueBufferSize: number;
  private fdValue: number;

  private constructor(private readonly native: NativeBpfMap) {
    const info = native.info();
    this.fdValue = info.fd;
    this.name = info.name;
    this.id = info.id;
    this.type = info.type;
    this.typeName = info.typeName;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.flags = info.flags;
    this.perCpu = info.perCpu;
    this.valueBufferSize = info.valueBufferSize;
  }

  /** Duplicates fd: the BpfMap stays valid after the fd's owner closes it. */
  static fromFd(fd: number, name?: string): BpfMap {
    return new BpfMap(new (addon().BpfMap)(fd, name));
  }

  static fromPinned(pinPath: string, name?: string): BpfMap {
    return new BpfMap(new (addon().BpfMap)(pinPath, name));
  }

  /** This map's own descriptor; -1 once closed. */
  get fd(): number {
    return this.fdValue;
  }

  get closed(): boolean {
    return this.fdValue < 0;
  }

  lookup(key: Uint8Array): Buffer | undefined {
    return this.native.lookup(key);
  }

  update(key: Uint8Array, value: Uint8Array, flags: UpdateFlag = 'any'): void {
    this.native.update(key, value, flags);
  }

  /** False when the key was not there. */
  delete(key: Uint8Array): boolean {
    return this.native.delete(key);
  }

  /** The first key when key is undefined; undefined after the last one. */
  getNextKey(key?: Uint8Array): Buffer | undefined {
    return this.native.getNextKey(key);
  }

  /** Walks the keys with getNextKey (a key deleted meanwhile restarts the walk: bounded by maxEntries). */
  keys(): Buffer[] {
    const out: Buffer[] = [];
    for (let key = this.native.getNextKey(undefined); key !== undefined && out.length < this.maxEntries; ) {
      out.push(key);
      key = this.native.getNextKey(key);
    }
    return out;
  }

  /** A snapshot taken with lookupBatch(); keys and values are views into its two buffers. */
  entries(opts?: BatchOptions): [Buffer, Buffer][] {
    const { keys, values, count } = this.lookupBatch(opts);
    const out = new Array<[Buffer, Buffer]>(count);
    for (let i = 0; i < count; i++) {
      out[i] = [
        keys.subarray(i * this.keySize, (i + 1) * this.keySize),
        values.subarray(i * this.valueBufferSize, (i + 1) * this.valueBufferSize),
      ];
    }
    return out;
  }

  /**
   * Reads the map in one native call (bpf_map_lookup_batch in chunks of 4096, or
   * get_next_key + lookup for types without batch support such as LPM tries).
   */
  lookupBatch(opts?: BatchOptions): BatchResult {
    return this.sized(this.native.lookupBatch(opts?.maxCount, opts?.into?.keys, opts?.into?.values));
  }

  /**
   * Like lookupBatch, deleting what it returns: atomically per entry with
   * bpf_map_lookup_and_delete_batch; for types without batch support, entries are deleted
   * after all are read, so an update landing in between is lost.
   */
  lookupAndDeleteBatch(opts?: BatchOptions): BatchResult {
    return this.sized(this.native.lookupAndDeleteBatch(opts?.maxCount, opts?.into?.keys, opts?.into?.values));
  }

  /** The native side hands back `into` whole: cut it to the entries read. */
  private sized(batch: BatchResult): BatchResult {
    const keyBytes = batch.count * this.keySize;
    const valueBytes = batch.count * this.valueBufferSize;
    if (batch.keys.length === keyBytes && batch.values.length === valueBytes) return batch;
    return { keys: batch.keys.subarray(0, keyBytes), values: batch.values.subarray(0, valueBytes), count: batch.count };
  }

  /**
   * Deletes `count` keys (default: keys.length / keySize) from the flat buffer; keys that are
   * already gone are skipped. Returns how many were deleted.
   */
  deleteBatch(keys: Uint8Array, count?: number): number {
    return this.native.deleteBatch(keys, count);
  }

  /** `count` defaults to keys.length / keySize; values holds count * valueBufferSize bytes. */
  updateBatch(keys: Uint8Array, values: Uint8Array, count?: number, flags: UpdateFlag = 'any'): void {
    this.native.updateBatch(keys, values, count, flags);
  }

  /** A per-CPU value (valueBufferSize bytes) as one valueSize view per possible CPU. */
  splitPerCpu(value: Buffer): Buffer[] {
    if (!this.perCpu) throw new TypeError(`map ${this.name} is not a per-CPU map`);
    if (value.length !== this.valueBufferSize) {
      throw new RangeError(`per-CPU value of ${this.name} must be ${this.valueBufferSize} bytes, got ${value.length}`);
    }
    const stride = (this.valueSize + 7) & ~7;
    const out: Buffer[] = [];
    for (let off = 0; off < value.length; off += stride) out.push(value.subarray(off, off + this.valueSize));
    return out;
  }

  /** Idempotent; also done by the GC. */
  close(): void {
    this.native.close();
    this.fdValue = -1;
  }
}

export class RingBuffer {
  private readonly native: NativeRingBuffer;

  /**
   * Starts a thread that polls the ring buffer (100 ms timeout) and delivers each drained
   * batch to onEvents on the JS thread; the events are copies (views into one Buffer per
   * batch). While open it keeps the process alive like a socket does, unless unref()'d.
   */
  constructor(map: number | BpfMap, onEvents: (events: Buffer[]) => void) {
    if (typeof onEvents !== 'function') throw new TypeError('onEvents must be a function');
    if (typeof map !== 'number' && map.closed) throw new TypeError(`map ${map.name} is closed`);
    const fd = typeof map === 'number' ? map : map.fd;
    this.native = new (addon().RingBuffer)(fd, (data, offsets) => {
      const events = new Array<Buffer>(offsets.length - 1);
      for (let i = 0; i < events.length; i++) events[i] = data.subarray(offsets[i], offsets[i + 1]);
      onEvents(events);
    });
  }

  get closed(): boolean {
    return this.native.closed;
  }

  stats(): RingBufferStats {
    return this.native.stats();
  }

  ref(): this {
    this.native.ref();
    return this;
  }

  unref(): this {
    this.native.unref();
    return this;
  }

  /** Stops and joins the thread; batches not yet delivered are discarded. Idempotent. */
  close(): void {
    this.native.close();
  }
}
