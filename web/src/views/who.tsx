/** Who the API takes the page's user for (GET /me): shown in the header, so a refused action is explained. */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.ts';

interface Me {
  readonly id: string;
  readonly roles: string[];
  readonly datasets: string[] | '*';
}

/** The roles held but not implied by another one held (functions/query-api/access.ts). */
function headline(roles: readonly string[]): string[] {
  if (roles.includes('admin')) return ['admin'];
  return roles.filter((r) => !(r === 'viewer' && roles.length > 1) && !(r === 'analyst' && roles.includes('approver')));
}

/**
 * One GET /me per page load, shared by every reader (the header and the exception page's panels):
 * who the token names does not change without a sign-in, which reloads the page. A failed answer is
 * not kept, so the next reader asks again.
 */
let meOnce: Promise<Me> | undefined;
function fetchMe(): Promise<Me> {
  meOnce ??= api<Me>('/me').catch((error: unknown) => {
    meOnce = undefined;
    throw error;
  });
  return meOnce;
}

/** The page's user as the API takes them (GET /me); null until known, or when it cannot say. */
export function useMe(): Me | null {
  const [me, setMe] = useState<Me | null>(null);
  useEffect(() => {
    let live = true;
    fetchMe()
      .then((m) => live && setMe(m))
      .catch(() => live && setMe(null));
    return () => {
      live = false;
    };
  }, []);
  return me;
}

/**
 * Whether the page's user asked for an approval (`requestedBy`): its maker cannot approve it
 * (the API refuses SAME_PERSON) but may withdraw it, a rejection.
 */
export function useIsMaker(requestedBy: string | undefined): boolean {
  const me = useMe();
  return me !== null && requestedBy !== undefined && me.id === requestedBy;
}

export function Who() {
  const me = useMe();
  if (!me) return null;
  const top = headline(me.roles);
  const datasets = me.datasets === '*' ? 'all datasets' : me.datasets.join(', ') || 'no dataset';
  return (
    <p class="who" data-testid="who" title={`roles: ${me.roles.join(', ') || 'none'}; datasets: ${datasets}`}>
      {me.id} · {top.join(', ') || 'no role'} · {datasets}
    </p>
  );
}
