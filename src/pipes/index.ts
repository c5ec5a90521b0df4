/** Pipes: what other areas may import. */
export {
  type Pipe, type PipeNode, PIPE_NAME, checkName, findPipe, getPipe, listPipes, getNode, endpointNode, newId, ID_SHAPED,
  putPipeOps, deletePipeOps, externalReferences, pipesUsing,
} from './pipe.js';
export { checkPipe, nodeClosure, requireEndpoint } from './check.js';
export { compileEndpoint, type CallOptions, type CompiledEndpoint } from './compile.js';
export { logEndpointCall, type EndpointCall } from './endpoint-log.js';
export { ResultTail } from './result-tail.js';
export { pipeDatafile } from './datafile.js';
export { planEngineCheck, runEngineCheck, samePlan, uncheckedNodes, CHECK_TIME_LIMIT_S, type EngineAccess, type EngineCheckPlan, type UncheckedNode } from './engine-check.js';
