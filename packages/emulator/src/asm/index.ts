/** The assembler, disassembler, CLFX images and the ISA document (re-exported by the package index). */
export type { AsmResult, AssembleOptions, LineInfo, SectionInfo } from './assembler.js';
export { assemble, MAX_OUTPUT } from './assembler.js';
export type { CliIo } from './cli.js';
export { formatListing, runCli } from './cli.js';
export type { Decoded, DisassembledLine } from './disasm.js';
export { decode, disassemble, disassembleAll, invalidReason } from './disasm.js';
export type { AsmErrorKind, SourcePos } from './errors.js';
export { AsmError } from './errors.js';
export type { DecodedImage, Image } from './image.js';
export {
  decodeImage,
  encodeImage,
  IMAGE_HEADER_BYTES,
  IMAGE_MAGIC,
  IMAGE_VERSION,
  ImageError,
} from './image.js';
export { renderIsaDoc } from './isa-doc.js';
export type { IncludeFn } from './source.js';
