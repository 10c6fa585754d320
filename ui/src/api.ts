// GraphQL over HTTP (POST /graphql on this origin), with the API key from sessionStorage.
const KEY = "missionControl.apiKey";

export function apiKey(): string {
  return sessionStorage.getItem(KEY) ?? "";
}

export function storeApiKey(key: string): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly refused = false,
  ) {
    super(message);
  }
}

export const REFUSED = "The service refused this API key. Paste a valid key above.";

export async function gql<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  let response: Response;
  try {
    response = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch {
    throw new ApiError("The service cannot be reached. Is it running?");
  }
  if (response.status === 401) throw new ApiError(REFUSED, true);
  let body: { data?: T; errors?: { message: string }[] };
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The service answered ${response.status} without a GraphQL response.`);
  }
  if (body.errors?.length) throw new ApiError(body.errors.map((e) => e.message).join("; "));
  if (!body.data) throw new ApiError(`The service answered ${response.status} with no data.`);
  return body.data;
}
