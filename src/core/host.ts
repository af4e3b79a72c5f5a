/**
 * Whether this runs in Node. Modules that use Node where it is there (the native backend, the
 * disk, zlib) import it dynamically when this is true, through a specifier held in a variable so
 * that bundlers for browsers leave the import out.
 */
export const IN_NODE = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
