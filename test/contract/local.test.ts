import { runContract } from './contract.js';

runContract('local');
