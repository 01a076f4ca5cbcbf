"""Statistics over the Interaction log: rollup maintenance (services) and the statistics query (selectors)."""
