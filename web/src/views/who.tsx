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

/** The page's user as the API takes them (GET /me); null until known, or when it cannot say. */
export function useMe(): Me | null {
  const [me, setMe] = useState<Me | null>(null);
  useEffect(() => {
    api<Me>('/me')
      .then(setMe)
      .catch(() => setMe(null));
  }, []);
  return me;
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
