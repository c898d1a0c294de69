/* int8 mean, sum, max or min over any axes of a 4-D box. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

/* One result: the reduced values of the box starting at `first`, stepping over the reduced axes only. */
static int32_t mcu_reduce_one(const mcu_reduce_params *params, const int8_t *first, const int32_t extent[4],
                              const int32_t stride[4])
{
    int32_t acc = params->op == MCU_REDUCE_MAX ? -128 : (params->op == MCU_REDUCE_MIN ? 127 : 0);
    for (int32_t a = 0; a < extent[0]; a++)
        for (int32_t b = 0; b < extent[1]; b++)
            for (int32_t c = 0; c < extent[2]; c++)
                for (int32_t d = 0; d < extent[3]; d++)
                {
                    const int32_t v = first[a * stride[0] + b * stride[1] + c * stride[2] + d * stride[3]];
                    if (params->op == MCU_REDUCE_MAX)
                        acc = v > acc ? v : acc;
                    else if (params->op == MCU_REDUCE_MIN)
                        acc = v < acc ? v : acc;
                    else
                        acc += v + params->input_offset; /* |v + offset| <= 255; the compiler bounds the count */
                }
    if (params->op != MCU_REDUCE_MEAN)
        return acc;
    /* TFLite's Mean: rescale the sum to the output scale, then divide by the count, halves away from 0. */
    const int64_t scaled = mcu_requantize(acc, params->multiplier, params->shift);
    const int64_t half = params->divisor / 2;
    const int64_t mean = (scaled > 0 ? scaled + half : scaled - half) / params->divisor;
    return (int32_t)(mean < -256 ? -256 : (mean > 256 ? 256 : mean)) + params->output_offset;
}

MCU_API mcu_status mcu_reduce_s8(const mcu_context *ctx,
                                 const mcu_reduce_params *params,
                                 const mcu_reduce_shape *shape,
                                 const int8_t *input,
                                 int8_t *output)
{
    (void)ctx;
    int32_t stride[4];
    int32_t kept[4];    /* extent of the outer loops: 1 on reduced axes */
    int32_t reduced[4]; /* extent of the inner loops: 1 on kept axes */
    stride[3] = 1;
    for (int32_t k = 3; k > 0; k--)
        stride[k - 1] = stride[k] * shape->in_dims[k];
    for (int32_t k = 0; k < 4; k++)
    {
        kept[k] = shape->reduced[k] ? 1 : shape->in_dims[k];
        reduced[k] = shape->reduced[k] ? shape->in_dims[k] : 1;
    }
    for (int32_t a = 0; a < kept[0]; a++)
        for (int32_t b = 0; b < kept[1]; b++)
            for (int32_t c = 0; c < kept[2]; c++)
                for (int32_t d = 0; d < kept[3]; d++)
                {
                    const int8_t *first = input + a * stride[0] + b * stride[1] + c * stride[2] + d * stride[3];
                    const int32_t out = mcu_reduce_one(params, first, reduced, stride);
                    const int32_t at = a * shape->out_strides[0] + b * shape->out_strides[1] +
                                       c * shape->out_strides[2] + d * shape->out_strides[3];
                    output[at] = (int8_t)mcu_clamp(out, params->activation.min, params->activation.max);
                }
    return MCU_STATUS_OK;
}
