// The runtime the node and agent daemons share.
export { AddressSchema, ContractsSchema, contractsOption, enumList, fileList, hexKeyList } from './config.ts';
export { ChainDriver, type ChainDriverOptions, type JobContext, JobLanes } from './driver.ts';
