/**
 * The traffic a destination limit caps (enum ids_traffic in bpf/xdp_ids.h): TCP SYNs (spoofed SYN
 * floods), SYN-ACKs (backscatter and reflection), UDP from amplifier ports (amplification), IP
 * fragments. Limits answer attacks whose sources are forged or reflectors, where blocking the
 * sources cannot help.
 */
export const TRAFFIC_CLASSES = ['syn', 'syn-ack', 'udp-amp', 'fragments'] as const;
export type TrafficClass = (typeof TRAFFIC_CLASSES)[number];

/** How people read a class in alerts and listings. */
export const TRAFFIC_NAMES: Record<TrafficClass, string> = {
  syn: 'SYNs', 'syn-ack': 'SYN-ACKs', 'udp-amp': 'UDP from amplifier ports', fragments: 'IP fragments',
};
