// Type declarations of "@nitrosign/client/viem" (hand-written).

import type { LocalAccount } from "viem";
import type { NitrosignClient } from "./index.js";

/** A viem local account whose key is in the enclave; every signature is checked to recover to address. key defaults to the address. */
export function nitrosignAccount(options: { client: NitrosignClient; address: string; key?: string }): LocalAccount<"custom">;
/** nitrosignAccount with the address looked up with GET /v1/keys. */
export function nitrosignAccountFromKey(client: NitrosignClient, key: string): Promise<LocalAccount<"custom">>;
