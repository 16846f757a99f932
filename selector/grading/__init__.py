"""Final-answer extraction and grading (PRM800K rules), with hard time limits. No Django here.

>>> grade_answer("\\\\frac{2}{4}", "\\\\frac{1}{2}")
False
"""

from selector.grading.extract import extract_answer, extract_answer_from_text
from selector.grading.grader import DEFAULT_TIMEOUT, grade_answer, grade_many, math_verify_agrees
from selector.grading.normalize import normalize_answer

__all__ = [
    "DEFAULT_TIMEOUT",
    "extract_answer",
    "extract_answer_from_text",
    "grade_answer",
    "grade_many",
    "math_verify_agrees",
    "normalize_answer",
]
