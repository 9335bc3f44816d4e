import dagre from '@dagrejs/dagre';

/**
 * The DAG's drawing, laid out by dagre (a layered, Sugiyama-style layout) when the report is made, so the
 * page draws plain SVG and needs no script for it. Pure: no I/O. Nodes are keyed by their index, never by
 * the (untrusted) item id.
 */

export interface LayoutInput {
  /** The label drawn in the node (already cut to fit). */
  label: string;
  /** Indexes of the nodes this one depends on. */
  dependsOn: number[];
}

export interface NodeBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface DagLayout {
  width: number;
  height: number;
  nodes: NodeBox[];
  /** One polyline per dependency, from the dependency to the dependent. */
  edges: Array<{ from: number; to: number; points: Array<{ x: number; y: number }> }>;
}

export const NODE_HEIGHT = 26;
/** An estimate of the label's width in the page's 12px monospace font. */
const CHAR_WIDTH = 7.3;
/** Above this many nodes the cheaper ranker is used. */
const LARGE = 200;

export function layoutDag(nodes: readonly LayoutInput[]): DagLayout {
  const g = new dagre.graphlib.Graph();
  // Left to right: independent items stack in a column, which a page scrolls, instead of one wide row.
  // network-simplex ranks more compactly but costs seconds at 1,000 nodes; longest-path is linear.
  const ranker = nodes.length > LARGE ? 'longest-path' : 'network-simplex';
  g.setGraph({ rankdir: 'LR', nodesep: 8, ranksep: 40, marginx: 8, marginy: 8, ranker });
  g.setDefaultEdgeLabel(() => ({}));
  nodes.forEach((n, i) => g.setNode(`n${i}`, { width: Math.ceil(n.label.length * CHAR_WIDTH) + 28, height: NODE_HEIGHT }));
  nodes.forEach((n, i) => {
    for (const d of n.dependsOn) g.setEdge(`n${d}`, `n${i}`);
  });
  dagre.layout(g);
  const graph = g.graph() as { width?: number; height?: number };
  return {
    width: Math.ceil(graph.width ?? 0),
    height: Math.ceil(graph.height ?? 0),
    nodes: nodes.map((_, i) => {
      const n = g.node(`n${i}`) as { x: number; y: number; width: number; height: number };
      return { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height };
    }),
    edges: g.edges().map((e: { v: string; w: string }) => ({
      from: Number(e.v.slice(1)),
      to: Number(e.w.slice(1)),
      points: ((g.edge(e) as { points?: Array<{ x: number; y: number }> }).points ?? []).map((p) => ({ x: p.x, y: p.y })),
    })),
  };
}
