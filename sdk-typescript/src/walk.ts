/**
 * Static navigation of a workflow's node tree, by the orchestrator's rules (docs/walk.md).
 *
 * After a node comes the next node of its sequence; past the end of a branch case comes
 * whatever comes after the branch; past the end of a parallel branch, a foreach body or
 * the top level comes the end (`undefined`): the lane is done.
 *
 * `evaluate` runs the user's branch keys and foreach item lists met walking from a node,
 * so the orchestrator (which never runs user code) learns them with a report.
 */
import type { BranchNode, ForeachNode, Node, StepNode } from "./nodes.js";
import { keyJson, sequencesOf } from "./nodes.js";
import { encodeJson } from "./json.js";

/** Where a node sits: its sequence, its index there and the node owning the sequence. */
export interface Place {
  readonly node: Node;
  readonly sequence: readonly Node[];
  readonly index: number;
  readonly owner: Node | undefined;
}

/** A control node's answer: its key or item list as JSON, or the error its function threw. */
export type Evaluation = { valueJson: string } | { error: unknown };

/** A workflow's nodes and where each one is, by name. */
export class Layout {
  private readonly places = new Map<string, Place>();
  private readonly compensations = new Map<string, StepNode>();

  constructor(readonly top: readonly Node[]) {
    this.index(top, undefined);
  }

  private index(sequence: readonly Node[], owner: Node | undefined): void {
    sequence.forEach((node, index) => {
      this.places.set(node.name, { node, sequence, index, owner });
      if (node.kind === "step" && node.compensation !== undefined) {
        this.compensations.set(node.compensation.name, node.compensation);
      }
      for (const inner of sequencesOf(node)) this.index(inner, node);
    });
  }

  place(name: string): Place | undefined {
    return this.places.get(name);
  }

  node(name: string): Node | undefined {
    return this.places.get(name)?.node;
  }

  compensation(name: string): StepNode | undefined {
    return this.compensations.get(name);
  }

  /** Every node, depth first in declaration order. */
  nodes(): Node[] {
    return [...this.places.values()].map((p) => p.node);
  }

  /** The node that runs after the node `name` finishes, or undefined (the end of its lane). */
  nextAfter(name: string): Node | undefined {
    const place = this.places.get(name);
    if (place === undefined) return undefined;
    if (place.index + 1 < place.sequence.length) return place.sequence[place.index + 1];
    if (place.owner?.kind === "branch") return this.nextAfter(place.owner.name);
    return undefined;
  }

  /** True if the nodes `name` and `other` are in one sequence (a goto's rule). */
  sameSequence(name: string, other: string): boolean {
    const a = this.places.get(name);
    const b = this.places.get(other);
    return a !== undefined && b !== undefined && a.sequence === b.sequence;
  }
}

/**
 * Evaluate the control nodes met walking from node `name` (`inclusive`) or from the one
 * after it, with `data` (already through JSON, as the next node sees it) as the input:
 * a step, a parallel or the end stop the walk; a branch records its key and goes on into
 * the chosen case (after the branch for an empty one), or stops on an error or no match;
 * a foreach records its items and stops. Returns node name -> evaluation, in walk order.
 */
export function evaluate(layout: Layout, name: string, data: unknown, inclusive: boolean): Map<string, Evaluation> {
  const out = new Map<string, Evaluation>();
  let node = inclusive ? layout.node(name) : layout.nextAfter(name);
  while (node !== undefined) {
    if (node.kind === "branch") {
      const [evaluation, chosen] = branchKey(node, data);
      out.set(node.name, evaluation);
      if (chosen === undefined) break;
      node = chosen.length > 0 ? chosen[0] : layout.nextAfter(node.name);
    } else if (node.kind === "foreach") {
      out.set(node.name, items(node, data));
      break;
    } else {
      break;
    }
  }
  return out;
}

function branchKey(node: BranchNode, data: unknown): [Evaluation, readonly Node[] | undefined] {
  let text: string;
  try {
    const key = node.on(data);
    if (key instanceof Promise) throw new TypeError(`branch ${node.name}: on must be a plain function, not async`);
    text = keyJson(key);
  } catch (error) {
    return [{ error }, undefined];
  }
  const found = node.cases.find((c) => c.keyJson === text);
  return [{ valueJson: text }, found?.nodes ?? node.default];
}

function items(node: ForeachNode, data: unknown): Evaluation {
  const what = `foreach ${node.name} items`;
  try {
    let list: unknown;
    if (typeof node.items === "string") {
      if (data === null || typeof data !== "object" || Array.isArray(data)) {
        throw new TypeError(`${what}: the input is not an object with the key ${JSON.stringify(node.items)}`);
      }
      if (!Object.prototype.hasOwnProperty.call(data, node.items)) {
        throw new RangeError(`${what}: the input has no key ${JSON.stringify(node.items)}`);
      }
      list = (data as Record<string, unknown>)[node.items];
    } else {
      list = node.items(data);
      if (list instanceof Promise) throw new TypeError(`${what} must be a plain function, not async`);
    }
    if (!Array.isArray(list)) throw new TypeError(`${what} must be an array, got ${list === null ? "null" : typeof list}`);
    return { valueJson: encodeJson(list, what) };
  } catch (error) {
    return { error };
  }
}
