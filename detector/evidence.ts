/**
 * The latest sampled packet headers per address (from trips and samples), so that an incident
 * can show what the traffic looked like. Bounded: a few samples per address, least recently
 * updated addresses forgotten first.
 */
import type { HeaderSample } from '../common/sensor-tick';

export class EvidenceBuffer {
  private readonly byAddress = new Map<string, HeaderSample[]>();

  constructor(private readonly maxAddresses = 20_000, private readonly perAddress = 8) {}

  add(sample: HeaderSample): void {
    this.push(sample.src, sample);
    this.push(sample.dst, sample);
  }

  /** Samples from or to an address, newest last (prefix keys such as `198.18.0.0/24` have none of their own). */
  of(key: string): HeaderSample[] {
    return this.byAddress.get(key) ?? [];
  }

  private push(address: string, sample: HeaderSample): void {
    const list = this.byAddress.get(address) ?? [];
    this.byAddress.delete(address);
    list.push(sample);
    if (list.length > this.perAddress) list.shift();
    this.byAddress.set(address, list);
    if (this.byAddress.size > this.maxAddresses) this.byAddress.delete(this.byAddress.keys().next().value!);
  }
}
