/**
 * The kernel's per-source and per-destination records decoded for tests: every field the README
 * names, at the offsets generated from the object's BTF, with the window slot of `window`.
 */
import type { XdpIdsProgram } from '../../sensor/kernel/program';
import { ADDR_SIZE, DST_STATS_SIZE, readDstCounters, readDstSourceBits, readSrcCounters, type DstCounters, type SrcCounters } from '../../sensor/kernel/records';
import { STRUCTS } from '../../sensor/kernel/layout.generated';
import { addressKey } from '../../sensor/addresses';

const SRC = STRUCTS.ids_src_stats.fields;
const SRC_WIN = STRUCTS.ids_src_window;

export type KernelSource = SrcCounters & {
  verified_at: number;
  verified_ttl: number;
  port_bits: number;
  host_bits: number;
  proto_bits: number;
  syn_window: number;
};

export function decodeSource(values: Buffer, off: number, window: number): KernelSource {
  const slot = off + SRC.win.offset + (window & 1) * SRC_WIN.size;
  const current = values.readUInt32LE(slot + SRC_WIN.fields.window.offset) === window >>> 0;
  const u16 = (field: 'port_bits' | 'host_bits' | 'proto_bits'): number => (current ? values.readUInt16LE(slot + SRC_WIN.fields[field].offset) : 0);
  return {
    ...readSrcCounters(values, off),
    verified_at: values.readUInt32LE(off + SRC.verified_at.offset),
    verified_ttl: values.readUInt8(off + SRC.verified_ttl.offset),
    port_bits: u16('port_bits'),
    host_bits: u16('host_bits'),
    proto_bits: u16('proto_bits'),
    syn_window: current ? values.readUInt32LE(slot + SRC_WIN.fields.syn.offset) : 0,
  };
}

export type KernelDestination = DstCounters & { src_bits: number; amp_src_bits: number };

export function decodeDestination(values: Buffer, off: number, window: number): KernelDestination {
  const bits = readDstSourceBits(values, off, window);
  return { ...readDstCounters(values, off), src_bits: bits.sources, amp_src_bits: bits.ampSources };
}

/** The source's record, or undefined when the kernel tracks no such source. */
export function sourceRecord(program: XdpIdsProgram, address: string, window = 0): KernelSource | undefined {
  const value = program.lookupSource(address);
  return value && decodeSource(value, 0, window);
}

/** The destination's record, or undefined when the kernel has none. */
export function destinationRecord(program: XdpIdsProgram, address: string, window = 0): KernelDestination | undefined {
  const batch = program.readDestinations();
  const key = addressKey(address);
  for (let i = 0; i < batch.count; i++) {
    if (batch.keys.compare(key, 0, ADDR_SIZE, i * ADDR_SIZE, (i + 1) * ADDR_SIZE) === 0) return decodeDestination(batch.values, i * DST_STATS_SIZE, window);
  }
  return undefined;
}
