/**
 * The console window's preload (sandboxed: bundled to one CommonJS file, it may require only 'electron').
 * It exposes `window.sluice`: one function per contract method and `onEvents`, nothing more.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { METHODS } from '../src/contract/api.js';
import { exposeContract } from './core/preload-api.js';

exposeContract(contextBridge, ipcRenderer, METHODS);
