import { runContract } from './contract.js';

runContract('aws');
