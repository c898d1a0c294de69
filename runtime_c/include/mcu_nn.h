/*
 * mcu_nn: int8 neural-network kernels for microcontrollers (C99, stdint only, no malloc, no globals).
 *
 * Conventions (CMSIS-NN style): argument order ctx, params, quant, (dims, data)..., output dims, output;
 * inputs are const; activations are NHWC; every kernel returns an mcu_status. The int8 arithmetic is
 * TFLite's (see mcu_nn_support.h); mcucompile's numpy references in mcucompile/ops/ are the spec, and tests
 * check these kernels against them bit for bit. mcucompile copies only the kernels a model uses into its
 * generated C file, with MCU_API defined as static.
 */
#ifndef MCU_NN_H
#define MCU_NN_H

#include "mcu_nn_support.h"
#include "mcu_nn_types.h"

/**
 * @brief Per-channel int8 2-D convolution, grouped when filter_dims->c < input_dims->c: G = C_IN / filter C_IN
 *        groups, output channel oc reads the input channels of group oc / (C_OUT / G).
 * @param[in]  ctx          Scratch of mcu_conv_s8_get_buffer_size() bytes, 2-byte aligned (one int16 im2col column
 *                          of one group).
 * @param[in]  params       Range of input_offset: [-127, 128]; output_offset: [-128, 127]; output_stride
 *                          (elements from one output pixel to the next): 0 (dense) or >= C_OUT.
 * @param[in]  quant        Requantization per output channel, length output_dims->c.
 * @param[in]  input_dims   Format: [N, H, W, C_IN]
 * @param[in]  filter_dims  Format: [C_OUT, HK, WK, C_IN / G]; HK * WK * C_IN / G < 66,000 (int32 accumulator).
 * @param[in]  bias         int32, length C_OUT, or NULL.
 * @param[out] output       Format: [N, H_OUT, W_OUT, C_OUT], pixel p's channels at output[p * output_stride]
 *                          when output_stride > 0 (a channel slice of a concatenation); other bytes untouched.
 * @return MCU_STATUS_ARG_ERROR if G does not divide both channel counts, output_stride is invalid or the scratch
 *         is too small.
 */
MCU_API mcu_status mcu_conv_s8(const mcu_context *ctx,
                               const mcu_conv_params *params,
                               const mcu_per_channel_quant *quant,
                               const mcu_dims *input_dims,
                               const int8_t *input,
                               const mcu_dims *filter_dims,
                               const int8_t *filter,
                               const int32_t *bias,
                               const mcu_dims *output_dims,
                               int8_t *output);

/** @brief Scratch bytes of mcu_conv_s8: 2 * HK * WK * C_IN / G (the filter's depth). */
MCU_API int32_t mcu_conv_s8_get_buffer_size(const mcu_dims *filter_dims);

/**
 * @brief Per-channel int8 2-D convolution (group = 1) as an int8 GEMM: im2col of 3 output pixels at a time where
 *        MCU_DSP (2 otherwise) into int16 scratch, then 3 (2) pixels x 2 output channels per pass over the packed
 *        weights, two MACs per SMLAD where MCU_DSP (see mcu_nn_support.h). Same results as mcu_conv_s8 given
 *        bias'[o] = bias[o] + input_offset * sum(filter[o]) (folded at compile time) and the filter packed by
 *        mcucompile/ops/conv.py pack_conv_fast, for
 *        |bias'[o]| + HK * WK * C_IN * 127 * 128 < 2^29 (no partial sum leaves mcu_requantize_fast's range) and
 *        every quant->shift <= 0; lower_conv gives other convolutions to mcu_conv_s8.
 * @param[in]  ctx          Scratch of mcu_conv_s8_fast_get_buffer_size() bytes, 4-byte aligned: the windows of a
 *                          step's output pixels are copied there before any of the step's outputs is written.
 * @param[in]  params       As mcu_conv_s8; input_offset only gives the value of taps outside the image (the input
 *                          zero point, -input_offset).
 * @param[in]  quant        As mcu_conv_s8; every shift <= 0.
 * @param[in]  filter_dims  [C_OUT, HK, WK, C_IN] of the unpacked filter.
 * @param[in]  filter       C_OUT * D4 bytes, 4-byte aligned, D4 = HK * WK * C_IN rounded up to a multiple of 4.
 *                          Per pair of output channels, its depths (ky * WK + kx) * C_IN + ic in chunks of 4, the
 *                          last one padded with zero weights, the two channels interleaved, each chunk in the order
 *                          depths 0, 2, 1, 3; then, if C_OUT is odd, the last channel's chunks in depth order.
 * @param[in]  bias         int32, length C_OUT, with the input offset folded in (not NULL).
 * @param[out] output       As mcu_conv_s8.
 * @return MCU_STATUS_ARG_ERROR if channel counts disagree, output_stride is invalid, the scratch is too small or
 *         the filter or scratch is not 4-byte aligned.
 */
MCU_API mcu_status mcu_conv_s8_fast(const mcu_context *ctx,
                                    const mcu_conv_params *params,
                                    const mcu_per_channel_quant *quant,
                                    const mcu_dims *input_dims,
                                    const int8_t *input,
                                    const mcu_dims *filter_dims,
                                    const int8_t *filter,
                                    const int32_t *bias,
                                    const mcu_dims *output_dims,
                                    int8_t *output);

/** @brief Scratch bytes of mcu_conv_s8_fast (either build): 6 * (HK * WK * C_IN rounded up to a multiple of 4)
 *         + 24 * min((C_OUT + 1) / 2, 8). */
MCU_API int32_t mcu_conv_s8_fast_get_buffer_size(const mcu_dims *filter_dims);

/**
 * @brief Per-channel int8 depthwise convolution; output channel o reads input channel o / (C_OUT / C_IN).
 * @param[in]  ctx          Unused (may be NULL).
 * @param[in]  params       As mcu_conv_s8 (output_stride: 0 or >= C_OUT).
 * @param[in]  input_dims   Format: [N, H, W, C_IN]
 * @param[in]  filter_dims  Format: [1, HK, WK, C_OUT]; C_OUT is a multiple of C_IN.
 * @param[out] output       Format: [N, H_OUT, W_OUT, C_OUT], pixels output_stride apart as mcu_conv_s8.
 */
MCU_API mcu_status mcu_depthwise_conv_s8(const mcu_context *ctx,
                                         const mcu_conv_params *params,
                                         const mcu_per_channel_quant *quant,
                                         const mcu_dims *input_dims,
                                         const int8_t *input,
                                         const mcu_dims *filter_dims,
                                         const int8_t *filter,
                                         const int32_t *bias,
                                         const mcu_dims *output_dims,
                                         int8_t *output);

/**
 * @brief Per-channel int8 depthwise 3x3 convolution, depth multiplier 1, dilation 1, any stride and padding:
 *        4 channels per step, the 9 taps unrolled; where MCU_DSP, two taps per SMLAD (see mcu_nn_support.h).
 *        Same results as mcu_depthwise_conv_s8 given bias'[c] = bias[c] + input_offset * (sum of the 9 weights of
 *        c) (folded at compile time) and the weights packed as below; a tap outside the image reads the zero point
 *        -input_offset (adds 0 against bias').
 * @param[in]  ctx          Unused (may be NULL).
 * @param[in]  params       input_offset in [-127, 128]; dilation 1; stride >= 1; output_stride as mcu_conv_s8.
 * @param[in]  quant        shift[c] in [-31, 0] (a multiplier below 1; mcu_requantize_fast).
 * @param[in]  input_dims   Format: [N, H, W, C]
 * @param[in]  filter_dims  [1, 3, 3, C]
 * @param[in]  filter       9 * C bytes, 4-byte aligned (tap = 3 * ky + kx). Per block of 4 channels c..c+3, 36
 *                          bytes: for the tap pairs (0, 3), (1, 4), (2, 5) two words each, (x_c, x_c+1, y_c,
 *                          y_c+1) then (x_c+2, x_c+3, y_c+2, y_c+3) for the pair's taps x, y; then tap 8's word
 *                          (channels c..c+3); then the pair (6, 7) as two words. Then the last C % 4 channels one
 *                          by one as [9 taps].
 * @param[in]  bias         int32, length C, with the input offset folded in (not NULL); |bias'| < 2^29 - 2^18.
 * @param[out] output       Format: [N, H_OUT, W_OUT, C], pixels output_stride apart as mcu_conv_s8. Per pixel, a
 *                          block's channels are written after all its reads, block after block.
 * @return MCU_STATUS_ARG_ERROR if shapes disagree, a stride is below 1, dilation is not 1, output_stride is
 *         invalid, the filter is not 4-byte aligned, or a bias or shift is out of the ranges above.
 */
MCU_API mcu_status mcu_depthwise_conv_3x3_s8_fast(const mcu_context *ctx,
                                                  const mcu_conv_params *params,
                                                  const mcu_per_channel_quant *quant,
                                                  const mcu_dims *input_dims,
                                                  const int8_t *input,
                                                  const mcu_dims *filter_dims,
                                                  const int8_t *filter,
                                                  const int32_t *bias,
                                                  const mcu_dims *output_dims,
                                                  int8_t *output);

/**
 * @brief Per-channel int8 transposed convolution (ONNX ConvTranspose, any group), in gather form:
 *        output[oy][ox][oc] sums w[oc][ky][kx][ic] * (x[iy][ix][g * C_IN / G + ic] + input_offset), g the group
 *        oc / (C_OUT / G) and G = C_IN / filter C_IN, over the taps with
 *        iy * stride.h == oy + padding.h - ky * dilation.h (and likewise for x), plus bias; then requantized.
 *        padding is what is cropped from the top/left of the full scattered output; no scratch is needed.
 * @param[in]  ctx          Unused (may be NULL).
 * @param[in]  params       As mcu_conv_s8 (output_stride included); stride >= 1.
 * @param[in]  input_dims   Format: [N, H, W, C_IN]
 * @param[in]  filter_dims  Format: [C_OUT, HK, WK, C_IN / G]; HK * WK * C_IN / G < 66,000 (int32 accumulator).
 * @param[in]  bias         int32, length C_OUT, or NULL.
 * @param[out] output       Format: [N, H_OUT, W_OUT, C_OUT]; any size (output_padding rows get the bias only).
 * @return MCU_STATUS_ARG_ERROR if channel or batch counts disagree, a stride is below 1 or output_stride is invalid.
 */
MCU_API mcu_status mcu_conv_transpose_s8(const mcu_context *ctx,
                                         const mcu_conv_params *params,
                                         const mcu_per_channel_quant *quant,
                                         const mcu_dims *input_dims,
                                         const int8_t *input,
                                         const mcu_dims *filter_dims,
                                         const int8_t *filter,
                                         const int32_t *bias,
                                         const mcu_dims *output_dims,
                                         int8_t *output);

/**
 * @brief Per-channel int8 fully connected layer: output[n][o] = requant(sum_k w[o][k] * (x[n][k] + input_offset) + b[o]).
 *        With input_offset 0 and a bias (the compiler folds the offset into the bias where the sums stay in
 *        int32), two output features per pass over the row, two MACs per SMLAD where MCU_DSP.
 * @param[in]  input_dims   Format: [N, 1, 1, K]
 * @param[in]  filter_dims  Format: [C_OUT, 1, 1, K]
 * @param[out] output       Format: [N, 1, 1, C_OUT]
 */
MCU_API mcu_status mcu_fully_connected_s8(const mcu_context *ctx,
                                          const mcu_fc_params *params,
                                          const mcu_per_channel_quant *quant,
                                          const mcu_dims *input_dims,
                                          const int8_t *input,
                                          const mcu_dims *filter_dims,
                                          const int8_t *filter,
                                          const int32_t *bias,
                                          const mcu_dims *output_dims,
                                          int8_t *output);

/**
 * @brief int8 max pooling; input and output share scale and zero point. Taps outside the image are skipped.
 * @param[in]  params       output_stride (elements from one output pixel to the next): 0 (dense) or >= C.
 * @param[in]  input_dims   Format: [N, H, W, C]
 * @param[out] output       Format: [N, H_OUT, W_OUT, C], pixel p's channels at output[p * output_stride]
 *                          when output_stride > 0; other bytes untouched.
 */
MCU_API mcu_status mcu_max_pool_s8(const mcu_context *ctx,
                                   const mcu_pool_params *params,
                                   const mcu_dims *input_dims,
                                   const int8_t *input,
                                   const mcu_dims *output_dims,
                                   int8_t *output);

/**
 * @brief int8 average pooling with TFLite's rounding (halves away from zero); input and output share
 *        scale and zero point. The divisor counts in-image taps, plus padded ones with count_include_pad.
 *        Shapes and output_stride as mcu_max_pool_s8.
 */
MCU_API mcu_status mcu_avg_pool_s8(const mcu_context *ctx,
                                   const mcu_pool_params *params,
                                   const mcu_dims *input_dims,
                                   const int8_t *input,
                                   const mcu_dims *output_dims,
                                   int8_t *output);

/**
 * @brief int8 mean, sum, max or min over any axes of a tensor of rank <= 4 (in its physical layout).
 *        Mean/sum: TFLite's Mean arithmetic (rescale the sum, then divide with halves away from zero).
 * @param[out] output  result of the kept position (i0..i3) at sum(i_k * shape->out_strides[k])
 */
MCU_API mcu_status mcu_reduce_s8(const mcu_context *ctx,
                                 const mcu_reduce_params *params,
                                 const mcu_reduce_shape *shape,
                                 const int8_t *input,
                                 int8_t *output);

/**
 * @brief int8 maximum, minimum or comparison of two tensors with broadcasting. Both inputs are rescaled to a
 *        common scale as mcu_add_s8 does; MAX/MIN requantize the chosen value to the output, comparisons write
 *        1 or 0 (a bool tensor: scale 1, zero point 0). Shapes, strides and in-place use as mcu_add_s8.
 */
MCU_API mcu_status mcu_compare_s8(const mcu_context *ctx,
                                  const mcu_compare_params *params,
                                  const mcu_broadcast_shape *shape,
                                  const int8_t *input1,
                                  const int8_t *input2,
                                  int8_t *output);

/**
 * @brief int8 Where: output = condition != 0 ? requantized when_true : requantized when_false, each operand
 *        broadcast. true_shape walks (condition, when_true) and false_shape (condition, when_false) over the
 *        output box as in mcu_add_s8; every output element is written once. The output may not overlap an input.
 */
MCU_API mcu_status mcu_where_s8(const mcu_context *ctx,
                                const mcu_where_params *params,
                                const mcu_broadcast_shape *true_shape,
                                const mcu_broadcast_shape *false_shape,
                                const int8_t *condition,
                                const int8_t *when_true,
                                const int8_t *when_false,
                                int8_t *output);

/**
 * @brief int8 add or subtract with broadcasting and different scales (TFLite Micro's ADD and SUB).
 *        Output element (i0..i3) of the row-major box shape->out_dims reads input k at
 *        sum(i_j * shape->ink_strides[j]). The output may be the same buffer as an input whose strides are
 *        the output's own (it is read before it is written).
 */
MCU_API mcu_status mcu_add_s8(const mcu_context *ctx,
                              const mcu_add_params *params,
                              const mcu_broadcast_shape *shape,
                              const int8_t *input1,
                              const int8_t *input2,
                              int8_t *output);

/**
 * @brief int8 multiply with broadcasting (TFLite Micro's MUL): (x1 + offset1) * (x2 + offset2) requantized.
 *        Shapes, strides and in-place use as mcu_add_s8.
 */
MCU_API mcu_status mcu_mul_s8(const mcu_context *ctx,
                              const mcu_mul_params *params,
                              const mcu_broadcast_shape *shape,
                              const int8_t *input1,
                              const int8_t *input2,
                              int8_t *output);

/**
 * @brief int8 PRelu with a broadcast int8 slope (TFLite Micro's PRELU): with x = input + input_offset,
 *        x >= 0 gives x requantized by identity_multiplier, x < 0 gives x * (alpha + alpha_offset) requantized by
 *        alpha_multiplier; plus output_offset, saturated to int8. Shapes as mcu_mul_s8 with the slope as input 2;
 *        input 1 must walk the output's own layout (in1_strides contiguous), and the output may equal it.
 */
MCU_API mcu_status mcu_prelu_s8(const mcu_context *ctx,
                                const mcu_prelu_params *params,
                                const mcu_broadcast_shape *shape,
                                const int8_t *input,
                                const int8_t *alpha,
                                int8_t *output);

/** @brief int8 -> int8 with new scale and zero point (TFLite's QUANTIZE of int8); output may equal input. */
MCU_API mcu_status mcu_requantize_s8(const mcu_context *ctx,
                                     const mcu_requantize_params *params,
                                     const int8_t *input,
                                     int32_t size,
                                     int8_t *output);

/** @brief Elementwise clamp to [activation.min, activation.max]; output may equal input (in place). */
MCU_API mcu_status mcu_clamp_s8(const mcu_context *ctx,
                                const mcu_activation *activation,
                                const int8_t *input,
                                int32_t size,
                                int8_t *output);

/**
 * @brief Elementwise lookup: output[i] = table[input[i] + 128]; output may equal input (in place).
 * @param[in] table  256 int8 values, the function of each input value from -128 to 127 (computed at compile time)
 */
MCU_API mcu_status mcu_lut_s8(const mcu_context *ctx, const int8_t *table, const int8_t *input, int32_t size,
                              int8_t *output);

/**
 * @brief int8 concatenation: per outer index, each input's run of parts[i].inner values lands at parts[i].offset
 *        of the output's run of out_inner values, requantized unless parts[i].copy.
 */
MCU_API mcu_status mcu_concat_s8(const mcu_context *ctx,
                                 const mcu_concat_params *params,
                                 const mcu_concat_part *parts,
                                 const int8_t *const *inputs,
                                 int8_t *output);

/**
 * @brief int8 strided copy (Slice, Split, Expand, Tile, DepthToSpace): output[i] = input[first + sum_k i_k *
 *        strides[k]] for every index i of out_dims, in row-major order; a stride of 0 repeats an input element
 *        (a broadcast). The compiler keeps every index inside the input; output must not overlap input.
 */
MCU_API mcu_status mcu_slice_s8(const mcu_context *ctx, const mcu_slice_params *params, const int8_t *input,
                                int8_t *output);

/** @brief int8 gather: output[o, i, k] = input[o, indices[i], k] with indices in [0, axis_dim). */
MCU_API mcu_status mcu_gather_s8(const mcu_context *ctx,
                                 const mcu_gather_params *params,
                                 const int32_t *indices,
                                 const int8_t *input,
                                 int8_t *output);

/**
 * @brief int8 group normalisation (GroupNormalization, InstanceNormalization with G = C): per batch and group,
 *        the mean and variance of its P x K int8 values in integers (sum in int32, sum of squares in int64, the
 *        variance with params->eps_term in input units), then t = round(2^12 (P K x - sum x) / sqrt(V)) with an
 *        integer square root, and y = output_offset + round((t * gain[c] + bias[c]) / 2^out_shift), clamped.
 *        Output may be the input (in place): a group's values are all read before any of them is written.
 * @param[in]  gain   int32 per channel c = g * K + k: round(gamma[c] / output_scale * 2^(out_shift - 12)).
 * @param[in]  bias   int64 per channel: round(beta[c] / output_scale * 2^out_shift).
 * @param[in]  input  Format: [N, P, G, K] (NHWC with C = G * K); P * K < 2^23.
 * @return MCU_STATUS_ARG_ERROR if a dimension is below 1 or P * K is too large.
 */
MCU_API mcu_status mcu_norm_s8(const mcu_context *ctx,
                               const mcu_norm_params *params,
                               const int32_t *gain,
                               const int64_t *bias,
                               const int8_t *input,
                               int8_t *output);

/**
 * @brief int8 softmax over rows of `depth` values, TFLite's fixed-point algorithm (gemmlowp exp and reciprocal);
 *        output scale 1/256, zero point -128.
 * @param[in] depth  1 .. 2^19 (the Q12.19 sum of exponentials must not overflow); TFLite-exact while no more
 *                   than 256 values of a row tie for its maximum.
 */
MCU_API mcu_status mcu_softmax_s8(const mcu_context *ctx,
                                  const mcu_softmax_params *params,
                                  const int8_t *input,
                                  int32_t rows,
                                  int32_t depth,
                                  int8_t *output);

/** @brief Copy a row-major int8 tensor of rank <= MCU_MAX_RANK with its axes permuted; output must not overlap input. */
MCU_API mcu_status mcu_transpose_s8(const mcu_context *ctx,
                                    const mcu_transpose_params *params,
                                    const int8_t *input,
                                    int8_t *output);

/**
 * @brief int8 padding of a tensor of rank <= 4 in its physical layout: constant, reflect, edge or wrap mode per
 *        mcu_pad_params.mode; negative `before` crops. Values are copied, or requantized unless params->copy.
 *        output[a,b,c,d] = input[src(a), ..., src(d)] with src(o) = o - before mapped by the mode.
 * @return MCU_STATUS_ARG_ERROR on an unknown mode or an empty input axis.
 */
MCU_API mcu_status mcu_pad_s8(const mcu_context *ctx, const mcu_pad_params *params, const int8_t *input,
                              int8_t *output);

/**
 * @brief int8 nearest resize of H and W (NHWC): output[n, y, x, :] = input[n, y_table[y], x_table[x], :].
 *        Input and output share scale and zero point.
 * @param[in] y_table  out_size.h source rows; x_table: out_size.w source columns (computed at compile time).
 * @return MCU_STATUS_ARG_ERROR if a table entry lies outside the input.
 */
MCU_API mcu_status mcu_resize_nearest_s8(const mcu_context *ctx,
                                         const mcu_resize_params *params,
                                         const int16_t *y_table,
                                         const int16_t *x_table,
                                         const int8_t *input,
                                         int8_t *output);

/**
 * @brief int8 bilinear resize of H and W (NHWC); input and output share scale and zero point.
 *        Per output row y the table holds (y0, y1, wy) with wy the Q11 weight of row y1 (0 .. 2048), the same per
 *        column; output = sum of the four raw int8 values times the products of their weights, divided by 2^22
 *        rounding halves away from zero.
 * @return MCU_STATUS_ARG_ERROR if a table entry lies outside the input or a weight outside [0, 2048].
 */
MCU_API mcu_status mcu_resize_bilinear_s8(const mcu_context *ctx,
                                          const mcu_resize_params *params,
                                          const int16_t *y_table,
                                          const int16_t *x_table,
                                          const int8_t *input,
                                          int8_t *output);

#endif /* MCU_NN_H */
