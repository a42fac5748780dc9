/* Special values of actfast_vmath.h (NaN, +-inf, signed zeros, overflow, subnormal results).
 * gcc -O2 -march=x86-64-v4 -fno-math-errno -fno-trapping-math -Isrc tools/check_vmath_special.c -lm && ./a.out
 * (and without -march for the no-FMA path); exit status 0 when all pass. */
#include <stdio.h>
#include <math.h>
#include <string.h>
#include "actfast_vmath.h"
static int bad=0;
#define CK(expr, want) do{ double g=(expr), w=(want); int ok = (isnan(w)&&isnan(g)) || (g==w && signbit(g)==signbit(w)); if(!ok){printf("FAIL %s = %a want %a\n", #expr, g, w); bad++;} }while(0)
int main(){
 double I=INFINITY, N=NAN;
 CK(af_exp(-I),0); CK(af_exp(I),I); CK(af_exp(N),N); CK(af_exp(-745.0), exp(-745.0)); CK(af_exp(-744.0), exp(-744.0)); CK(af_exp(709.78), exp(709.78)); CK(af_exp(709.8), I);
 CK(af_expf(-I),0); CK(af_expf(I),I); CK(af_expf(N),N); CK(af_expf(-103.0f), expf(-103.0f)); CK(af_expf(88.8f), I);
 CK(af_expm1(-0.0), -0.0); CK(af_expm1f(-0.0f), -0.0); CK(af_expm1(-I), -1); CK(af_expm1(I), I); CK(af_expm1f(-I), -1); CK(af_expm1f(I), I); CK(af_expm1(N),N);
 CK(af_expm1(709.7), expm1(709.7)); CK(af_expm1(709.8), I); CK(af_expm1f(88.7f), expm1f(88.7f)); CK(af_expm1f(88.73f), I);
 CK(af_log(0.0), -I); CK(af_log(-0.0), -I); CK(af_log(-1.0), N); CK(af_log(I), I); CK(af_log(-I), N); CK(af_log(N), N); CK(af_log(5e-324), log(5e-324)); CK(af_log(1.0), 0.0);
 CK(af_logf(0.0f), -I); CK(af_logf(-1.0f), N); CK(af_logf(I), I); CK(af_logf(1e-45f), (float)logf(1e-45f)); CK(af_logf(1.0f), 0.0);
 CK(af_log1p(-1.0), -I); CK(af_log1p(-2.0), N); CK(af_log1p(I), I); CK(af_log1p(-0.0), -0.0); CK(af_log1p(N), N); CK(af_log1p(1e300), log1p(1e300));
 CK(af_log1pf(-1.0f), -I); CK(af_log1pf(-2.0f), N); CK(af_log1pf(I), I); CK(af_log1pf(-0.0f), -0.0);
 CK(af_tanh(I), 1); CK(af_tanh(-I), -1); CK(af_tanh(-0.0), -0.0); CK(af_tanh(N), N); CK(af_tanhf(-I), -1); CK(af_tanhf(-0.0f), -0.0); CK(af_tanh(1e-310), 1e-310);
 CK(af_erfc(-I), 2); CK(af_erfc(I), 0); CK(af_erfc(N), N); CK(af_erfcf(-I), 2); CK(af_erfcf(I), 0); CK(af_erfc(0.0), 1); CK(af_erfc(-0.0), 1);
 CK(af_erfc(26.5), erfc(26.5)); CK(af_erfcf(10.0f), 1.40129846e-45f);
 CK(af_ndtr(-I), 0); CK(af_ndtr(I), 1); CK(af_ndtr(N), N);
 printf("%s: %d failures\n",
#ifdef __FMA__
 "fma",
#else
 "nofma",
#endif
 bad); return bad!=0; }
