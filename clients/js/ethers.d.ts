// Type declarations of "@nitrosign/client/ethers" (hand-written).

import { AbstractSigner, type Provider, type TransactionRequest, type TypedDataDomain, type TypedDataField } from "ethers";
import type { NitrosignClient } from "./index.js";

/** An ethers v6 Signer whose key is in the enclave; every signature is checked to recover to address. */
export class NitrosignSigner extends AbstractSigner {
  /** key defaults to the address (the API takes either). */
  constructor(client: NitrosignClient, account: { address: string; key?: string }, provider?: Provider | null);
  /** Looks the key's address up with GET /v1/keys. */
  static fromKey(client: NitrosignClient, key: string, provider?: Provider | null): Promise<NitrosignSigner>;
  readonly client: NitrosignClient;
  readonly address: string;
  readonly key: string;
  getAddress(): Promise<string>;
  connect(provider: Provider | null): NitrosignSigner;
  signTransaction(tx: TransactionRequest): Promise<string>;
  signMessage(message: string | Uint8Array): Promise<string>;
  signTypedData(domain: TypedDataDomain, types: Record<string, Array<TypedDataField>>, value: Record<string, any>): Promise<string>;
}
