"""``prefetch_for_write(array, row, column)``: a software prefetch (LLVM's ``llvm.prefetch``) of the cache line that
holds ``array[row, column]`` of a 2-d C-contiguous array, with intent to write, for Numba-compiled loops.

word2vec's loop reads rows of two large matrices at random (the noise words' output rows); the row indices are known
a few hundred instructions before the rows are used, so asking for them early hides part of the memory latency.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_WRITE, _KEEP_IN_ALL_CACHES, _DATA = 1, 3, 1  # llvm.prefetch(address, rw, locality, cache type)


@intrinsic
def prefetch_for_write(typingctx, array, row, column):  # pragma: no cover - compiled
    if not (isinstance(array, types.Array) and array.ndim == 2 and array.layout == "C"):
        return None
    if not (isinstance(row, types.Integer) and isinstance(column, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        data = context.make_array(array_type)(context, builder, args[0])
        width = builder.extract_value(data.shape, 1)
        row_index = context.cast(builder, args[1], signature.args[1], types.intp)
        column_index = context.cast(builder, args[2], signature.args[2], types.intp)
        address = builder.gep(data.data, [builder.add(builder.mul(row_index, width), column_index)])
        byte_pointer = ir.IntType(8).as_pointer()
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer] + [ir.IntType(32)] * 3), "llvm.prefetch.p0")
        builder.call(function, [builder.bitcast(address, byte_pointer)]
                     + [ir.Constant(ir.IntType(32), flag) for flag in (_WRITE, _KEEP_IN_ALL_CACHES, _DATA)])
        return context.get_dummy_value()

    return types.void(array, row, column), codegen
