/** The generated TypeScript layout must match the BTF of the object that is built now. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
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

  test("bpf/README.md's memory table gives the built size of each hash map element", () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../bpf/README.md'), 'utf8');
    // The kernel's hash element: a 48-byte header, then key and value, each rounded up to 8 bytes.
    const element = (key: number, value: number): number => 48 + Math.ceil(key / 8) * 8 + Math.ceil(value / 8) * 8;
    const built = {
      ids_src: element(STRUCTS.ids_addr.size, STRUCTS.ids_src_stats.size),
      ids_dst: element(STRUCTS.ids_addr.size, STRUCTS.ids_dst_stats.size),
      ids_challenges: element(STRUCTS.ids_challenge_key.size, 4),
      ids_dst_limit: element(STRUCTS.ids_dst_limit_key.size, STRUCTS.ids_dst_limit.size),
    };
    const documented = Object.fromEntries(Object.keys(built).map((name) => [name, Number(new RegExp(`^\\| ${name} \\|[^|]*\\|[^|]*\\| (\\d+) `, 'm').exec(readme)?.[1])]));
    expect(documented).toEqual(built);
  });
});
