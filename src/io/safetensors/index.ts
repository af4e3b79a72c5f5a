export { openSafetensors, DEFAULT_CHUNK_BYTES, type SafetensorsFile } from './reader.js';
export { writeSafetensors, type TensorSource, type SafetensorsWriteOptions } from './writer.js';
export { parseHeader, parseHeaderLength, layoutHeader, MAX_HEADER_BYTES, type SafetensorsEntry, type SafetensorsHeader, type HeaderLayout } from './header.js';
