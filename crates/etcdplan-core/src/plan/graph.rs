//! The step graph (petgraph) and its deterministic order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

use super::Step;

/// Collects steps and edges; insertion order breaks ties in the final order.
#[derive(Default)]
pub(super) struct Builder {
    graph: DiGraph<Step, ()>,
}

impl Builder {
    pub(super) fn add(&mut self, s: Step) -> NodeIndex {
        self.graph.add_node(s)
    }

    pub(super) fn edge(&mut self, a: NodeIndex, b: NodeIndex) {
        self.graph.update_edge(a, b, ());
    }

    pub(super) fn edge_opt(&mut self, a: Option<NodeIndex>, b: NodeIndex) {
        if let Some(a) = a {
            self.edge(a, b);
        }
    }

    /// The steps nothing waits for yet: a step after all of them runs last.
    pub(super) fn sinks(&self) -> Vec<NodeIndex> {
        self.graph
            .node_indices()
            .filter(|&n| {
                self.graph
                    .neighbors_directed(n, Direction::Outgoing)
                    .next()
                    .is_none()
            })
            .collect()
    }

    /// Steps in order, and the edges renumbered to that order.
    pub(super) fn finish(self) -> (Vec<Step>, Vec<(usize, usize)>) {
        let ordered = order(&self.graph);
        let mut pos = vec![0; self.graph.node_count()];
        for (i, n) in ordered.iter().enumerate() {
            pos[n.index()] = i;
        }
        let steps = ordered.iter().map(|n| self.graph[*n].clone()).collect();
        let mut edges: Vec<(usize, usize)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (pos[a.index()], pos[b.index()]))
            .collect();
        edges.sort_unstable();
        (steps, edges)
    }
}

/// Kahn's algorithm with the lowest insertion index first, so the same graph
/// always gives the same order (petgraph's toposort breaks no ties). Nodes on
/// a cycle (a planner bug) are left out rather than looping.
pub fn order<N, E>(g: &DiGraph<N, E>) -> Vec<NodeIndex> {
    let mut indegree: Vec<usize> = g
        .node_indices()
        .map(|n| g.neighbors_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<NodeIndex>> = g
        .node_indices()
        .filter(|n| indegree[n.index()] == 0)
        .map(Reverse)
        .collect();
    let mut out = Vec::with_capacity(g.node_count());
    while let Some(Reverse(n)) = ready.pop() {
        out.push(n);
        for m in g.neighbors_directed(n, Direction::Outgoing) {
            indegree[m.index()] -= 1;
            if indegree[m.index()] == 0 {
                ready.push(Reverse(m));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_respects_edges_and_breaks_ties_by_insertion() {
        let mut g: DiGraph<&str, ()> = DiGraph::new();
        let a = g.add_node("a");
        let b = g.add_node("b");
        let c = g.add_node("c");
        g.add_edge(c, a, ());
        let names: Vec<&str> = order(&g).into_iter().map(|n| g[n]).collect();
        assert_eq!(names, ["b", "c", "a"]);
        let _ = b;
    }
}
