/*
 * mcu_nn types: dimensions, parameter structs and the status enum shared by every kernel.
 * Layouts are NHWC for activations; sign conventions are stated on each field and pinned by tests.
 */
#ifndef MCU_NN_TYPES_H
#define MCU_NN_TYPES_H

#include <stddef.h>
#include <stdint.h>

/** Axes of the tensors mcu_transpose_s8 and mcu_slice_s8 move (shapes of fewer axes are padded with leading 1s) */
#define MCU_MAX_RANK 6

typedef enum
{
    MCU_STATUS_OK = 0,         /**< Success */
    MCU_STATUS_ARG_ERROR = -1, /**< An argument violates a constraint documented in mcu_nn.h */
    MCU_STATUS_NO_IMPL = -2    /**< Valid arguments, but this combination is not implemented */
} mcu_status;

typedef struct
{
    int32_t n; /**< Batch */
    int32_t h; /**< Height */
    int32_t w; /**< Width */
    int32_t c; /**< Channels (innermost) */
} mcu_dims;

typedef struct
{
    int32_t h;
    int32_t w;
} mcu_tile;

typedef struct
{
    int32_t min; /**< Lower clamp of the int8 output, fused activation included */
    int32_t max; /**< Upper clamp of the int8 output */
} mcu_activation;

typedef struct
{
    void *buf;    /**< Scratch memory inside the arena, or NULL when the kernel needs none */
    int32_t size; /**< Bytes available at buf */
} mcu_context;

typedef struct
{
    const int32_t *multiplier; /**< Q31, one per output channel */
    const int32_t *shift;      /**< Per output channel; > 0 shifts left, < 0 shifts right */
} mcu_per_channel_quant;

typedef struct
{
    int32_t input_offset;  /**< -(input zero point), added to every input value */
    int32_t output_offset; /**< +(output zero point), added after requantization */
    mcu_tile stride;
    mcu_tile padding; /**< Top and left padding; bottom and right follow from the output size */
    mcu_tile dilation;
    mcu_activation activation;
    int32_t output_stride; /**< Elements from one output pixel to the next: 0 = C_OUT (dense), else >= C_OUT
                                (the output is a channel slice of a wider tensor, e.g. a concatenation) */
} mcu_conv_params;

typedef struct
{
    int32_t input_offset;  /**< -(input zero point) */
    int32_t output_offset; /**< +(output zero point) */
    mcu_activation activation;
} mcu_fc_params;

typedef struct
{
    mcu_tile kernel;
    mcu_tile stride;
    mcu_tile padding;  /**< Top and left padding */
    mcu_tile pad_end;  /**< Bottom and right padding (counted by average pooling with count_include_pad) */
    mcu_tile dilation; /**< Max pooling only */
    int32_t count_include_pad; /**< Average pooling: 1 counts padded taps as the pad value */
    int32_t pad_value;         /**< Average pooling: the int8 value of a padded tap (the zero point) */
    mcu_activation activation;
    int32_t output_stride; /**< Elements from one output pixel to the next: 0 = C (dense), else >= C */
} mcu_pool_params;

typedef enum
{
    MCU_REDUCE_MEAN = 0, /**< also sum: divisor 1 */
    MCU_REDUCE_MAX = 1,
    MCU_REDUCE_MIN = 2
} mcu_reduce_op;

typedef struct
{
    int32_t op;            /**< mcu_reduce_op */
    int32_t input_offset;  /**< mean/sum: -(input zero point); max/min: 0 */
    int32_t output_offset; /**< mean/sum: +(output zero point); max/min: 0 (same quantization) */
    int32_t multiplier;    /**< mean/sum: Q31 of input_scale / output_scale; the sum is rescaled, then divided */
    int32_t shift;         /**< > 0 shifts left */
    int32_t divisor;       /**< mean: the count of reduced values; sum: 1 */
    mcu_activation activation;
} mcu_reduce_params;

typedef struct
{
    int32_t in_dims[4];     /**< the input's physical (row-major) dims, padded with leading 1s */
    int32_t reduced[4];     /**< 1 where the axis is reduced */
    int32_t out_strides[4]; /**< per input axis, its element stride in the output (0 where reduced) */
} mcu_reduce_shape;

typedef struct
{
    int32_t input_offset;  /**< -(input zero point) */
    int32_t output_offset; /**< +(output zero point) */
    int32_t multiplier;    /**< Q31 of input_scale / output_scale */
    int32_t shift;         /**< > 0 shifts left */
} mcu_requantize_params;

typedef struct
{
    int32_t input1_offset; /**< -(zero point of input 1) */
    int32_t input2_offset; /**< -(zero point of input 2) */
    int32_t left_shift;    /**< Headroom shift applied to both inputs (20 for int8, as TFLite) */
    int32_t input1_multiplier;
    int32_t input1_shift; /**< <= 0 */
    int32_t input2_multiplier;
    int32_t input2_shift; /**< <= 0 */
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t output_offset; /**< +(output zero point) */
    mcu_activation activation;
    int32_t subtract; /**< 1: input1 - input2 (TFLite Micro's SUB subtracts the rescaled input 2) */
} mcu_add_params;

typedef struct
{
    int32_t input1_offset;     /**< -(zero point of input 1) */
    int32_t input2_offset;     /**< -(zero point of input 2) */
    int32_t output_multiplier; /**< Q31 of s1 * s2 / s_out (TFLite MUL) */
    int32_t output_shift;      /**< > 0 shifts left */
    int32_t output_offset;     /**< +(output zero point) */
    mcu_activation activation;
} mcu_mul_params;

typedef struct
{
    int32_t input_offset;        /**< -(input zero point) */
    int32_t alpha_offset;        /**< -(slope zero point) */
    int32_t output_offset;       /**< +(output zero point) */
    int32_t identity_multiplier; /**< Q31 of s_in / s_out, for inputs at or above the input zero point */
    int32_t identity_shift;      /**< > 0 shifts left */
    int32_t alpha_multiplier;    /**< Q31 of s_in * s_alpha / s_out, for inputs below the input zero point */
    int32_t alpha_shift;         /**< > 0 shifts left */
} mcu_prelu_params;

typedef struct
{
    int32_t out_dims[4];    /**< the output's physical (row-major) dims, padded with leading 1s */
    int32_t in1_strides[4]; /**< per output axis, input 1's element stride (0 where it is broadcast) */
    int32_t in2_strides[4]; /**< the same for input 2 */
} mcu_broadcast_shape;

/** What mcu_compare_s8 computes from the two rescaled inputs a and b. */
typedef enum
{
    MCU_PICK_MAX = 0,         /**< max(a, b), requantized (Max; Or of two bool tensors) */
    MCU_PICK_MIN = 1,         /**< min(a, b), requantized (Min; And of two bool tensors) */
    MCU_IS_GREATER = 2,       /**< 1 where a > b, else 0 (Greater; Less with the inputs swapped) */
    MCU_IS_GREATER_EQUAL = 3, /**< 1 where a >= b, else 0 */
    MCU_IS_EQUAL = 4          /**< 1 where a == b, else 0 */
} mcu_compare_op;

typedef struct
{
    mcu_add_params rescale; /**< both inputs to one scale as ADD does; output fields used by MAX/MIN only */
    int32_t op;             /**< an mcu_compare_op */
} mcu_compare_params;

typedef struct
{
    mcu_requantize_params when_true;  /**< the value chosen where the condition is non-zero, to the output */
    mcu_requantize_params when_false; /**< the value chosen where it is zero */
} mcu_where_params;

typedef struct
{
    int32_t batches;        /**< N: independent normalisations of positions x groups x group_channels values */
    int32_t positions;      /**< P: pixels (H * W), or 1 for a normalisation over the last axis */
    int32_t groups;         /**< G: channel groups per position, each normalised over P x K values */
    int32_t group_channels; /**< K: channels of a group, contiguous; the tensor is [N, P, G, K] row-major */
    int64_t eps_term;       /**< round(epsilon * (P * K)^2 / input_scale^2), >= 1: added to (P K) sum x^2 - (sum x)^2 */
    int32_t out_shift;      /**< F: y = offset[c] + (t * gain[c] + bias[c] + 2^(F-1)) >> F, t the Q12 normalised x */
    int32_t output_offset;  /**< +(output zero point) */
    mcu_activation activation;
} mcu_norm_params;

typedef struct
{
    int32_t input_multiplier; /**< Q31 of input_scale * 2^26 (beta = 1), TFLite's PreprocessSoftmaxScaling */
    int32_t input_left_shift; /**< >= 0 */
    int32_t diff_min;         /**< Differences to the row maximum below this give exactly 0 (output -128) */
} mcu_softmax_params;

typedef struct
{
    int32_t in_dims[MCU_MAX_RANK]; /**< Row-major shape of the input, padded with leading 1s */
    int32_t perm[MCU_MAX_RANK];    /**< Output axis k is input axis perm[k] */
} mcu_transpose_params;

typedef struct
{
    int32_t count;     /**< number of inputs */
    int32_t outer;     /**< product of the output's physical dims before the concat axis */
    int32_t out_inner; /**< elements of the output from the concat axis on, per outer index */
} mcu_concat_params;

typedef struct
{
    int32_t inner;  /**< elements of this input from the concat axis on, per outer index */
    int32_t offset; /**< where they start in the output's run */
    int32_t copy;   /**< 1: same quantization as the output, copied as is */
    mcu_requantize_params requantize; /**< otherwise: to the output's scale and zero point */
} mcu_concat_part;

typedef struct
{
    int32_t first;                 /**< input element of output index 0 */
    int32_t strides[MCU_MAX_RANK]; /**< per output axis, input elements between its consecutive indices (0: repeat) */
    int32_t out_dims[MCU_MAX_RANK]; /**< row-major output dims, padded with leading 1s */
} mcu_slice_params;

typedef struct
{
    int32_t outer;    /**< product of the physical dims before the gathered axis */
    int32_t axis_dim; /**< size of the gathered axis in the input */
    int32_t inner;    /**< product of the physical dims after it */
    int32_t count;    /**< number of indices */
} mcu_gather_params;

typedef enum
{
    MCU_PAD_CONSTANT = 0, /**< positions outside the input hold pad_value */
    MCU_PAD_REFLECT = 1,  /**< mirrored at the edges, the edge itself not repeated */
    MCU_PAD_EDGE = 2,     /**< the edge value repeated */
    MCU_PAD_WRAP = 3      /**< circular: the other end of the axis continues (ONNX 'wrap', opset 19) */
} mcu_pad_mode;

typedef struct
{
    int32_t in_dims[4];  /**< physical dims of the input, padded with leading 1s */
    int32_t out_dims[4]; /**< physical dims of the output */
    int32_t before[4];   /**< pads before each axis (negative: cropped) */
    int32_t mode;        /**< an mcu_pad_mode */
    int32_t pad_value;   /**< int8 constant on the output's grid */
    int32_t copy;        /**< 1: same quantization as the output, values copied as is */
    mcu_requantize_params requantize; /**< otherwise: to the output's scale and zero point */
} mcu_pad_params;

typedef struct
{
    int32_t batches;  /**< N */
    int32_t channels; /**< C (innermost, copied or interpolated as runs) */
    mcu_tile in_size;  /**< input H, W */
    mcu_tile out_size; /**< output H, W */
} mcu_resize_params;

#endif /* MCU_NN_TYPES_H */
