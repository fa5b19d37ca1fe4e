import type { ApiError, ApiErrorCode } from '../contract/api.js';

/** An expected failure of a contract request; transports send it as a structured error reply. */
export class ContractError extends Error {
  constructor(readonly code: ApiErrorCode, message: string, readonly issues?: ApiError['issues']) {
    super(message);
  }

  toApiError(): ApiError {
    return this.issues ? { code: this.code, message: this.message, issues: this.issues } : { code: this.code, message: this.message };
  }
}
