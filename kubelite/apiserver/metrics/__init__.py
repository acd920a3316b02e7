"""``metrics.k8s.io/v1beta1`` served by the API server itself (no separate metrics-server): a scraper
reads every node agent's ``/metrics/resource`` (`scraper`), an in-memory store keeps the last two
samples per node and container and turns them into usage rates (`store`), and `api` answers
NodeMetrics/PodMetrics gets and lists from it.  Nothing is persisted: after a restart the API has
data again after two scrapes."""
