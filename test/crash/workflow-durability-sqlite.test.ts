import { sqliteKind } from '../support/stores.js';
import { durabilitySuite } from './workflow-durability.js';

durabilitySuite(sqliteKind);
