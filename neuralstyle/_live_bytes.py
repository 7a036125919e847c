"""Live bytes of the tensors a piece of code makes, counted through public PyTorch hooks.

:mod:`neuralstyle.memory` runs its probe under a :class:`LiveBytes` counter: the bytes alive after
every step of a forward and backward pass, from which it fits how memory grows with the pixels.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.graph import Node
from torch.overrides import TorchFunctionMode

__all__ = ["LiveBytes"]


class LiveBytes:
    """Counts the bytes of live tensor storages made while it watches, at every step of a pass.

    Forward passes (inside :meth:`watching`): after every call of a torch function or tensor
    method (a public :class:`~torch.overrides.TorchFunctionMode`), and whenever autograd saves a
    tensor for the backward pass (:func:`~torch.autograd.graph.saved_tensors_hooks`), which also
    shows what an operator saves without returning it (max pooling's indices, autocast's casts).
    The backward pass (:meth:`backward`): before and after every node of the graph (hooks of
    :class:`~torch.autograd.graph.Node`), which see the gradients each node receives and makes.

    A storage is counted when it is first met as an output, a saved tensor or a gradient, and
    uncounted when it is freed (storages keep their Python object, so a weak reference sees the
    real free). A storage first met as an input was made before counting started (the weights,
    the caller's images) and is never counted; outputs sharing an input's storage (views, in-place
    ops) are not new memory. ``largest`` is the largest ``(1, C, H, W)`` tensor made (the probe's
    batch is one image, so weights and Grams are not maps).

    What happens inside one call stays unseen (a composite function's temporaries, autocast's
    casts that are not saved, a backward formula's temporaries), except as modelled here: a
    gradient that reaches a node input which already holds one is added to it into a new tensor
    (the autograd engine does so between nodes, where no hook sees it; an upper bound where the
    engine adds in place), and max pooling without gradients makes int64 indices for its output
    that it drops at once (PyTorch's CPU kernel computes them even when they are not asked for).
    """

    def __init__(self) -> None:
        self.live = 0
        self.events: list[int] = []
        self.largest = 0
        self._counted: set[int] = set()
        # Storages met first as inputs, held so that their ids cannot be reused by new storages.
        self._preexisting: dict[int, torch.UntypedStorage] = {}
        self._finalizers: list[weakref.finalize[Any, Any]] = []
        # Gradient sums the engine holds for a node input (node id, input number) before the node
        # runs, and the node inputs that have received a gradient.
        self._sums: dict[tuple[int, int], int] = {}
        self._reached: set[tuple[int, int]] = set()
        self.busy = False

    @property
    def unseen(self) -> int:
        """Bytes of the gradient sums waiting for their node: alive, but no hook has seen them."""
        return sum(self._sums.values())

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Count the forward passes run inside."""
        with _Calls(self), torch.autograd.graph.saved_tensors_hooks(self._saved, _unpacked):
            yield

    def backward(self, total: Tensor) -> None:
        """``total.backward()``, counting before and after every node of its graph."""
        nodes = _graph(total)
        handles = []
        for node in nodes:
            key = id(node)  # the nodes stay alive (in ``nodes``) while the ids are used
            edges = [
                None if head is None else (id(head), slot) for head, slot in node.next_functions
            ]
            handles.append(node.register_prehook(self._before_node(key)))
            handles.append(node.register_hook(self._after_node(edges)))
        try:
            total.backward()  # type: ignore[no-untyped-call]
        finally:
            for handle in handles:
                handle.remove()

    def mark(self) -> int:
        """Record the live bytes now (after the frees since the last op); return the index."""
        self._record()
        return len(self.events)

    def detach(self) -> None:
        """Stop watching the storages still alive (the probe's own, freed after it)."""
        for finalizer in self._finalizers:
            finalizer.detach()
        self._preexisting.clear()

    def called(self, func: Callable[..., Any], given: list[Tensor], result: object) -> None:
        """After a torch call: count what it made."""
        self._made(result, given)
        if func is F.max_pool2d and isinstance(result, Tensor):
            saved = torch.is_grad_enabled() and any(t.requires_grad for t in given)
            if not saved:  # the indices lived only during the call
                self._record(result.numel() * 8)

    def note_inputs(self, given: list[Tensor]) -> None:
        """Before a torch call: remember the storages made before counting."""
        for tensor in given:
            storage = tensor.untyped_storage()
            if id(storage) not in self._counted:
                self._preexisting.setdefault(id(storage), storage)

    def _saved(self, tensor: Tensor) -> Tensor:
        self._made(tensor, [])
        return tensor

    def _before_node(self, key: int) -> Callable[[tuple[Tensor | None, ...]], None]:
        def hook(grads: tuple[Tensor | None, ...]) -> None:
            # The sums waiting for this node are its inputs now: counted as storages below.
            for slot in range(len(grads)):
                self._sums.pop((key, slot), None)
            self._made(grads, [])

        return hook

    def _after_node(
        self, edges: list[tuple[int, int] | None]
    ) -> Callable[[tuple[Tensor | None, ...], tuple[Tensor | None, ...]], None]:
        def hook(made: tuple[Tensor | None, ...], received: tuple[Tensor | None, ...]) -> None:
            self._made(made, [])
            # After the node the engine drops what it received (unless the node made a view of
            # it), then hands each new gradient on; one that reaches a node input already holding
            # a gradient is added to it into a new tensor, and both are dropped.
            kept = {id(grad.untyped_storage()) for grad in made if grad is not None}
            dropped = _dropped_bytes(received, kept, self._counted)
            unseen, added = self.unseen, 0
            for grad, edge in zip(made, edges, strict=True):
                if grad is None or edge is None:
                    continue
                if edge in self._reached:
                    size = grad.untyped_storage().nbytes()
                    added = max(added, size)
                    self._sums[edge] = size
                    continue
                self._reached.add(edge)
            if added:  # the moment of the largest addition, after the drops
                self.events.append(self.live - dropped + unseen + added)

        return hook

    def _made(self, made: object, given: Sequence[Tensor]) -> None:
        """Count the storages of ``made`` met for the first time, then record the live bytes."""
        # A saved-tensor hook can run with the torch function mode on (in an autograd.Function's
        # forward): the mode must not take the calls made here for the code's own.
        self.busy = True
        try:
            inputs = {id(t.untyped_storage()) for t in given}
            for tensor in _tensors(made):
                storage = tensor.untyped_storage()
                key = id(storage)
                if key in self._counted or key in inputs or key in self._preexisting:
                    continue
                size = storage.nbytes()
                self._counted.add(key)
                self.live += size
                if tensor.dim() == 4 and tensor.shape[0] == 1:  # a map of the probe's one image
                    self.largest = max(self.largest, size)
                self._finalizers.append(weakref.finalize(storage, self._free, key, size))
        finally:
            self.busy = False
        self._record()

    def _record(self, extra: int = 0) -> None:
        self.events.append(self.live + self.unseen + extra)

    def _free(self, key: int, size: int) -> None:
        self.live -= size
        self._counted.discard(key)


class _Calls(TorchFunctionMode):
    """Tells a counter about every torch call of the code run inside it."""

    def __init__(self, counter: LiveBytes) -> None:
        super().__init__()
        self._counter = counter

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if self._counter.busy:
            return func(*args, **(kwargs or {}))
        given = list(_tensors((args, kwargs)))
        self._counter.note_inputs(given)
        result = func(*args, **(kwargs or {}))
        self._counter.called(func, given, result)
        return result


def _unpacked(tensor: Tensor) -> Tensor:
    return tensor


def _graph(total: Tensor) -> list[Node]:
    """The nodes of the backward graph of ``total``."""
    found: list[Node] = []
    seen: set[Node] = set()
    todo = [total.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        found.append(node)
        todo.extend(head for head, _ in node.next_functions)
    return found


def _dropped_bytes(received: Sequence[Tensor | None], kept: set[int], counted: set[int]) -> int:
    """Bytes of the counted storages of ``received`` that are not in ``kept``, each once."""
    dropped: dict[int, int] = {}
    for grad in received:
        if grad is None:
            continue
        storage = grad.untyped_storage()
        if id(storage) in counted and id(storage) not in kept:
            dropped[id(storage)] = storage.nbytes()
    return sum(dropped.values())


def _tensors(tree: object) -> Iterator[Tensor]:
    """The tensors of an operator's output: one tensor, or nested tuples, lists and dicts."""
    if isinstance(tree, Tensor):
        yield tree
    elif isinstance(tree, (tuple, list)):
        for item in tree:
            yield from _tensors(item)
    elif isinstance(tree, dict):
        for item in tree.values():
            yield from _tensors(item)
