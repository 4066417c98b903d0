/*
 * CPU backend ops against plain double-precision references written here: RMSNorm (w and 1 + w),
 * RoPE angles (plain, linear, llama3 factors, YaRN), RoPE rotation (normal and NeoX) with the KV
 * store, attention over a scattered block table (GQA, causal, sliding window, soft-cap), the
 * gated activations, add with broadcast, scale and soft-cap. Ops the real models do not reach
 * (soft-capping, the 1 + w norm, YaRN) are covered here.
 */
#define TEST_PI 3.14159265358979323846
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "testutil.h"

static imp_test_rng rng;

static float frand(void) { return imp_test_rng_uniform(&rng) * 2.0f - 1.0f; }

static void fill(float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] = s * frand();
}

static double max_rel(const float *a, const double *b, size_t n) {
    double num = 0.0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return num / den;
}

static void test_norm(imp_backend *be) {
    enum { R = 5, C = 37 };
    float x[R * C], w[C], y[R * C];
    double ref[R * C];
    fill(x, R * C, 3.0f);
    fill(w, C, 1.0f);
    imp_tensor tx = imp_tensor_make(IMP_TYPE_F32, C, R, x), tw = imp_tensor_make(IMP_TYPE_F32, C, 1, w),
               ty = imp_tensor_make(IMP_TYPE_F32, C, R, y);
    for (int one = 0; one < 2; one++) {
        CHECK(be->ops->rms_norm(be, &tx, &tw, 1e-6f, one, &ty) == IMP_OK);
        for (int r = 0; r < R; r++) {
            double ss = 0;
            for (int c = 0; c < C; c++) ss += (double)x[r * C + c] * x[r * C + c];
            const double s = 1.0 / sqrt(ss / C + 1e-6);
            for (int c = 0; c < C; c++) ref[r * C + c] = x[r * C + c] * s * (one ? 1.0 + w[c] : w[c]);
        }
        CHECKF(max_rel(y, ref, R * C) < 1e-6, "rms_norm one_plus_w=%d: %.3g", one, max_rel(y, ref, R * C));
    }
    /* in place */
    memcpy(y, x, sizeof x);
    CHECK(be->ops->rms_norm(be, &ty, &tw, 1e-6f, false, &ty) == IMP_OK);
    CHECK(be->ops->rms_norm(be, &tx, &tw, 1e-6f, false, &tx) == IMP_OK);
    CHECK(memcmp(x, y, sizeof x) == 0);
}

/* theta of pair i at pos, from the formulas (double): base^(-2i/n), / factor, linear scale, YaRN */
static void ref_angles(const imp_rope *r, const float *ff, int pos, double *c, double *s) {
    const int half = r->n_dims / 2;
    double low = 0, high = 0, msc = r->attn_factor;
    if (r->ext_factor != 0.0f) {
        const double rot_dim = 2.0 * TEST_PI;
        /* the dim index whose wavelength fits n_rot rotations into the training context */
        double d_fast = r->n_dims * log(r->n_ctx_orig / (r->beta_fast * rot_dim)) / (2 * log(r->freq_base));
        double d_slow = r->n_dims * log(r->n_ctx_orig / (r->beta_slow * rot_dim)) / (2 * log(r->freq_base));
        low = fmax(0.0, floor(d_fast));
        high = fmin(r->n_dims - 1.0, ceil(d_slow));
        msc *= 1.0 + 0.1 * log(1.0 / r->freq_scale);
    }
    for (int i = 0; i < half; i++) {
        double ex = pos * pow(r->freq_base, -2.0 * i / r->n_dims) / (ff ? ff[i] : 1.0);
        double in = ex * r->freq_scale, th = in;
        if (r->ext_factor != 0.0f) {
            double y = (i - low) / fmax(0.001, high - low);
            double mix = (1.0 - fmin(1.0, fmax(0.0, y))) * r->ext_factor;
            th = in * (1 - mix) + ex * mix;
        }
        c[i] = cos(th) * msc;
        s[i] = sin(th) * msc;
    }
}

static void test_rope_angles(void) {
    float ff[32];
    for (int i = 0; i < 32; i++) ff[i] = 1.0f + (float)i * 0.25f;
    imp_tensor tff = imp_tensor_make(IMP_TYPE_F32, 32, 1, ff);
    const imp_rope cases[] = {
        {.n_dims = 64, .freq_base = 10000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f},
        {.n_dims = 64, .freq_base = 1e6f, .freq_scale = 0.125f, .attn_factor = 1.0f},
        {.n_dims = 64, .freq_base = 500000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f, .freq_factors = &tff},
        {.n_dims = 64, .freq_base = 10000.0f, .freq_scale = 0.25f, .ext_factor = 1.0f, .attn_factor = 1.0f,
         .beta_fast = 32.0f, .beta_slow = 1.0f, .n_ctx_orig = 4096},
    };
    const char *names[] = {"plain", "linear", "llama3 factors", "yarn"};
    for (int k = 0; k < 4; k++) {
        double worst = 0;
        for (int pos = 0; pos < 300; pos += 7) {
            float cs[64];
            double c[32], s[32];
            imp_rope_cos_sin(&cases[k], cases[k].freq_factors ? ff : NULL, pos, cs);
            ref_angles(&cases[k], cases[k].freq_factors ? ff : NULL, pos, c, s);
            for (int i = 0; i < 32; i++) {
                worst = fmax(worst, fabs(cs[2 * i] - c[i]));
                worst = fmax(worst, fabs(cs[2 * i + 1] - s[i]));
            }
        }
        /* float theta accumulates ~1e-7 relative per step: about 1e-4 absolute at pos 300 */
        CHECKF(worst < 5e-4, "rope angles %s: max error %.3g", names[k], worst);
        printf("rope angles %-15s max |err| %.2e\n", names[k], worst);
    }
}

/* a pool of 6 blocks of 4 slots; sequence 0 uses blocks 4,1,5; sequence 1 uses 2,0 */
enum { BS = 4, NB = 6, H = 4, HKV = 2, D = 16, T = 7 };
static const int32_t seq0_blocks[] = {4, 1, 5}, seq1_blocks[] = {2, 0};

static void test_rope_store_attention(imp_backend *be) {
    float kbuf[NB * BS * HKV * D], vbuf[NB * BS * HKV * D];
    memset(kbuf, 0, sizeof kbuf);
    memset(vbuf, 0, sizeof vbuf);
    imp_tensor kt = imp_tensor_make(IMP_TYPE_F32, HKV * D, NB * BS, kbuf),
               vt = imp_tensor_make(IMP_TYPE_F32, HKV * D, NB * BS, vbuf);
    imp_kv_store kv = {.n_layer = 1, .block_size = BS, .n_blocks = NB, .n_embd_kv = HKV * D, .type = IMP_TYPE_F32,
                       .k = &kt, .v = &vt};
    imp_batch_seq seqs[2] = {{seq0_blocks, 3}, {seq1_blocks, 2}};
    for (int style = 0; style < 2; style++) {
        /* step 1: sequence 0 positions 0..9 and sequence 1 positions 0..4, all in one batch */
        int32_t pos[15], sq[15], slot[15], tok[15] = {0};
        int n = 0;
        for (int p = 0; p < 10; p++, n++) pos[n] = p, sq[n] = 0, slot[n] = seq0_blocks[p / BS] * BS + p % BS;
        for (int p = 0; p < 5; p++, n++) pos[n] = p, sq[n] = 1, slot[n] = seq1_blocks[p / BS] * BS + p % BS;
        imp_batch b = {.n_tokens = n, .token = tok, .pos = pos, .seq = sq, .slot = slot, .n_seqs = 2, .seqs = seqs};
        float q[15 * H * D], k[15 * HKV * D], v[15 * HKV * D], q0[15 * H * D], k0[15 * HKV * D];
        fill(q, sizeof q / 4, 1.0f);
        fill(k, sizeof k / 4, 1.0f);
        fill(v, sizeof v / 4, 1.0f);
        memcpy(q0, q, sizeof q);
        memcpy(k0, k, sizeof k);
        imp_tensor tq = imp_tensor_make(IMP_TYPE_F32, H * D, n, q), tk = imp_tensor_make(IMP_TYPE_F32, HKV * D, n, k),
                   tv = imp_tensor_make(IMP_TYPE_F32, HKV * D, n, v);
        imp_rope rope = {.style = style ? IMP_ROPE_NEOX : IMP_ROPE_NORM, .n_dims = 12, .freq_base = 10000.0f,
                         .freq_scale = 1.0f, .attn_factor = 1.0f};
        imp_attn_params ap = {.n_head = H, .n_head_kv = HKV, .head_dim = D, .scale = 0.25f};
        CHECK(be->ops->rope_kv_store(be, &rope, &ap, NULL, &tq, &tk, &tv, &b, &kv, 0) == IMP_OK);
        /* rotation: pairs (2i, 2i+1) or (i, i + 6) of the first 12 dims; dims 12..15 untouched */
        double worst = 0;
        for (int t = 0; t < n; t++) {
            double c[6], s[6];
            ref_angles(&rope, NULL, pos[t], c, s);
            for (int h = 0; h < H; h++) {
                const float *x0 = q0 + (t * H + h) * D, *x1 = q + (t * H + h) * D;
                for (int i = 0; i < 6; i++) {
                    const int a = style ? i : 2 * i, bb = style ? i + 6 : 2 * i + 1;
                    worst = fmax(worst, fabs(x1[a] - (x0[a] * c[i] - x0[bb] * s[i])));
                    worst = fmax(worst, fabs(x1[bb] - (x0[a] * s[i] + x0[bb] * c[i])));
                }
                for (int i = 12; i < D; i++) worst = fmax(worst, fabs(x1[i] - x0[i]));
            }
            /* the pool slot holds the rotated k and the v */
            CHECK(memcmp(kbuf + slot[t] * HKV * D, k + t * HKV * D, HKV * D * 4) == 0);
            CHECK(memcmp(vbuf + slot[t] * HKV * D, v + t * HKV * D, HKV * D * 4) == 0);
        }
        (void)k0;
        CHECKF(worst < 1e-5, "rope style %d: %.3g", style, worst);

        /* attention for T tokens: window and soft-cap variants, against a naive softmax */
        const int32_t apos[T] = {9, 0, 4, 7, 3, 2, 4}, aseq[T] = {0, 0, 0, 0, 1, 1, 1};
        float aq[T * H * D], out[T * H * D];
        double ref[T * H * D];
        fill(aq, sizeof aq / 4, 2.0f);
        imp_batch ab = {.n_tokens = T, .token = tok, .pos = apos, .seq = aseq, .slot = slot, .n_seqs = 2, .seqs = seqs};
        imp_tensor taq = imp_tensor_make(IMP_TYPE_F32, H * D, T, aq), tout = imp_tensor_make(IMP_TYPE_F32, H * D, T, out);
        const struct { int window; float cap; } var[] = {{0, 0.0f}, {3, 0.0f}, {0, 1.5f}, {2, 3.0f}};
        for (int vi = 0; vi < 4; vi++) {
            imp_attn_params p2 = ap;
            p2.window = var[vi].window;
            p2.softcap = var[vi].cap;
            CHECK(be->ops->attention(be, &taq, &kv, 0, &ab, &p2, &tout) == IMP_OK);
            for (int t = 0; t < T; t++) {
                const int32_t *blk = aseq[t] ? seq1_blocks : seq0_blocks;
                for (int h = 0; h < H; h++) {
                    const int g = h / (H / HKV);
                    double sc[16], mx = -1e300, sum = 0;
                    int p0 = p2.window > 0 ? apos[t] - p2.window + 1 : 0;
                    if (p0 < 0) p0 = 0;
                    for (int p = p0; p <= apos[t]; p++) {
                        const float *kr = kbuf + (blk[p / BS] * BS + p % BS) * HKV * D + g * D;
                        double d = 0;
                        for (int i = 0; i < D; i++) d += (double)aq[(t * H + h) * D + i] * kr[i];
                        d *= p2.scale;
                        if (p2.softcap > 0) d = p2.softcap * tanh(d / p2.softcap);
                        sc[p - p0] = d;
                        mx = fmax(mx, d);
                    }
                    for (int p = p0; p <= apos[t]; p++) sum += (sc[p - p0] = exp(sc[p - p0] - mx));
                    for (int i = 0; i < D; i++) {
                        double o = 0;
                        for (int p = p0; p <= apos[t]; p++) {
                            o += sc[p - p0] / sum * vbuf[(blk[p / BS] * BS + p % BS) * HKV * D + g * D + i];
                        }
                        ref[(t * H + h) * D + i] = o;
                    }
                }
            }
            const double e = max_rel(out, ref, T * H * D);
            CHECKF(e < 1e-5, "attention window %d softcap %g: %.3g", var[vi].window, (double)var[vi].cap, e);
        }
    }
}

static void test_elementwise(imp_backend *be) {
    enum { R = 3, C = 300 };
    float a[R * C], b[R * C], bias[C], y[R * C];
    double ref[R * C];
    fill(a, R * C, 6.0f);
    fill(b, R * C, 2.0f);
    fill(bias, C, 1.0f);
    imp_tensor ta = imp_tensor_make(IMP_TYPE_F32, C, R, a), tb = imp_tensor_make(IMP_TYPE_F32, C, R, b),
               tbias = imp_tensor_make(IMP_TYPE_F32, C, 1, bias), ty = imp_tensor_make(IMP_TYPE_F32, C, R, y);
    for (int act = 0; act < 2; act++) {
        CHECK(be->ops->glu(be, &ta, &tb, act ? IMP_ACT_GELU_TANH : IMP_ACT_SILU, &ty) == IMP_OK);
        for (int i = 0; i < R * C; i++) {
            const double x = a[i];
            const double g = act ? 0.5 * x * (1 + tanh(sqrt(2 / TEST_PI) * (x + 0.044715 * x * x * x))) : x / (1 + exp(-x));
            ref[i] = g * b[i];
        }
        CHECKF(max_rel(y, ref, R * C) < 1e-6, "glu act %d: %.3g", act, max_rel(y, ref, R * C));
    }
    CHECK(be->ops->add(be, &ta, &tbias, &ty) == IMP_OK);
    for (int i = 0; i < R * C; i++) ref[i] = (double)a[i] + bias[i % C];
    CHECK(max_rel(y, ref, R * C) < 1e-7);
    CHECK(be->ops->add(be, &ta, &tb, &ty) == IMP_OK);
    for (int i = 0; i < R * C; i++) ref[i] = (double)a[i] + b[i];
    CHECK(max_rel(y, ref, R * C) < 1e-7);
    CHECK(be->ops->scale(be, &ta, 0.5f, &ty) == IMP_OK);
    for (int i = 0; i < R * C; i++) ref[i] = a[i] * 0.5;
    CHECK(max_rel(y, ref, R * C) < 1e-7);
    memcpy(y, a, sizeof a);
    CHECK(be->ops->softcap(be, &ty, 2.5f) == IMP_OK);
    for (int i = 0; i < R * C; i++) ref[i] = 2.5 * tanh(a[i] / 2.5);
    CHECK(max_rel(y, ref, R * C) < 1e-6);
    /* a column view (phi3's fused outputs): only its columns change */
    float wide[R * 2 * C];
    fill(wide, R * 2 * C, 1.0f);
    float keep[R * 2 * C];
    memcpy(keep, wide, sizeof wide);
    imp_tensor tw = imp_tensor_make(IMP_TYPE_F32, 2 * C, R, wide), right = imp_tensor_cols(&tw, C, C);
    CHECK(be->ops->scale(be, &right, 2.0f, &right) == IMP_OK);
    int bad = 0;
    for (int r = 0; r < R; r++) {
        for (int c = 0; c < 2 * C; c++) bad += wide[r * 2 * C + c] != (c < C ? keep[r * 2 * C + c] : 2.0f * keep[r * 2 * C + c]);
    }
    CHECK(bad == 0);
    /* shape mismatch is an internal error, not a crash */
    imp_tensor tshort = imp_tensor_make(IMP_TYPE_F32, C - 1, R, b);
    CHECK(be->ops->add(be, &ta, &tshort, &ty) == IMP_ERR_INTERNAL);
}

int main(void) {
    rng.s = 42;
    imp_backend *be = NULL;
    imp_error err = {0};
    CHECK(imp_backend_cpu_create(2, &be, &err) == IMP_OK);
    CHECK(imp_backend_cpu_create(0, &(imp_backend *){NULL}, &err) == IMP_ERR_INVALID_ARG);
    if (be) {
        test_norm(be);
        test_rope_angles();
        test_rope_store_attention(be);
        test_elementwise(be);
        imp_backend_free(be);
    }
    return imp_test_finish("test_cpu_ops");
}
