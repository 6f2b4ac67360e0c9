/** The Redis Cluster slot of a key (CRC16 of its hash tag, modulo 16384); version 1.1.1 (ioredis' own) ships no types. */
declare module 'cluster-key-slot' {
  function clusterKeySlot(key: string): number;
  export = clusterKeySlot;
}
