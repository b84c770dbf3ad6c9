// cluster-key-slot ships no type declarations; this is the part of its documented API we use.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0..16383) of `key`, honouring a `{hash tag}`. */
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
