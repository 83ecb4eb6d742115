export { VmmError, type VmmErrorCode } from './errors.js';
export { PagePool } from './pages.js';
export { realCpl, realRing } from './rings.js';
export { type SdtCounters, type SdtPolicy, ShadowSet, shadowHi } from './sdt.js';
export { HOLE, type VeStats, VirtualEnvironment, type VmmEvent } from './ve.js';
export { diskRegion, type VeProfile, Vmm, type VmmOptions } from './vmm.js';
