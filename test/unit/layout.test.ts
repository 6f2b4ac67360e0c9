/** The generated TypeScript layout must match the BTF of the object that is built now. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { STRUCTS } from '../../sensor/kernel/layout.generated';

const OBJECT = path.resolve(__dirname, '../../bpf/xdp_ids.bpf.o');

describe('layout.generated.ts', () => {
  const btf = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', OBJECT], { maxBuffer: 64 << 20 }).toString());
  const structs = new Map<string, { size: number; members: { name: string; bits_offset: number }[] }>(
    btf.types.filter((t: { kind: string }) => t.kind === 'STRUCT').map((t: { name: string }) => [t.name, t]));

  test.each(Object.keys(STRUCTS))('struct %s has the offsets and size of the built object', (name) => {
    const generated = STRUCTS[name as keyof typeof STRUCTS];
    const actual = structs.get(name)!;
    expect(generated.size).toBe(actual.size);
    const offsets = Object.fromEntries(Object.entries(generated.fields).map(([f, v]) => [f, v.offset]));
    expect(offsets).toEqual(Object.fromEntries(actual.members.map((m) => [m.name, m.bits_offset / 8])));
  });

  test('a tracked source costs at most 256 bytes of kernel memory (key + value + 48-byte LRU element)', () => {
    expect(STRUCTS.ids_addr.size + STRUCTS.ids_src_stats.size + 48).toBeLessThanOrEqual(256);
  });
});
